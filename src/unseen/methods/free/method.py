"""FREE (Chen, Wang, Xia, Peng, You, Zheng, Shao, ICCV 2021): TF-VAEGAN's VAE-GAN feature
generator without the feedback module, plus a feature refinement module FR trained with a
self-adaptive margin centre loss (SAMC) and a semantic cycle-consistency loss; the final
softmax reads [x ; FR hidden ; FR semantic reconstruction] of real seen and generated unseen
features, retrained after every epoch.

Faithful to the authors' code as it runs (docs/methods/free.md): SAMC centres, E, G, D, FR
built in that order; per generator iteration `critic_iterations` steps, each an FR + centres
step then a D step on one fresh batch; then one E + G (+ FR) step on the last batch; two
identical passes over the data per epoch; adaptive lambda; no ZSL classifier. The epoch loop,
evaluation and state are `GenerativeMethod`'s.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from unseen.errors import TrainingDivergedError, UnseenInputError
from unseen.methods.base import MethodConfig
from unseen.methods.free.config import FREEConfig
from unseen.methods.free.losses import NEGATIVES, samc_loss
from unseen.methods.free.networks import FeatureRefinement
from unseen.methods.free.presets import PRESETS
from unseen.methods.generative.classifier import adam
from unseen.methods.generative.data import TaskTensors
from unseen.methods.generative.networks import (
    ConditionalCritic,
    ConditionalGenerator,
    VAEEncoder,
)
from unseen.methods.generative.trainer import GenerativeMethod, check_options
from unseen.methods.generative.vae import reparameterize, vae_loss, weighted_l1
from unseen.methods.generative.wgan import Batch, critic_loss, random_batch

_ENCODER_BETAS = (0.9, 0.999)  # train_free.py:134: Adam's defaults for E


class FREE(GenerativeMethod):
    """FREE with the reference's training steps; `GenerativeMethod` runs the epochs and the
    once-per-epoch evaluation that yields one GZSL candidate per classifier epoch."""

    name: ClassVar[str] = "free"
    label: ClassVar[str] = "FREE"
    # G synthesises; FR fc1 / fc3 make the classifier input (not its unused heads)
    inference_parts: ClassVar[tuple[str, ...]] = ("generator", "refinement.fc1",
                                                  "refinement.fc3")
    config_class: ClassVar[type[MethodConfig]] = FREEConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    input_kind: ClassVar[str] = "features"
    description: ClassVar[str] = ("FREE (ICCV 2021): VAE-GAN features + feature refinement "
                                  "with a self-adaptive margin centre loss")
    loss_keys: ClassVar[tuple[str, ...]] = (
        "critic_loss", "generator_loss", "wasserstein_distance", "gradient_penalty",
        "center_loss", "real_reconstruction", "fake_reconstruction", "vae_loss")

    config: FREEConfig
    # Built by `fit` (or `load_state_dict`), beside GenerativeMethod's G, D and their Adams.
    centers: nn.Parameter | None = None
    encoder: VAEEncoder | None = None
    refinement: FeatureRefinement | None = None
    optimizer_e: torch.optim.Adam | None = None
    optimizer_fr: torch.optim.Adam | None = None
    optimizer_centers: torch.optim.Adam | None = None
    # (batch, mu, logvar) of the last critic step's E pass, re-used by the generator step
    _encoding: tuple[Batch, torch.Tensor, torch.Tensor] | None = None

    # ---------------------------------------------------------------- construction

    def _build(self, architecture: dict[str, int]) -> None:
        """The SAMC centres (N(0, 1), on the CPU generator), then E, G, D and FR: the
        reference's order (train_free.py:45-59), which fixes the random stream."""
        a = self.architecture = dict(architecture)
        c, device = self.config, self.device
        features, semantics = a["feature_dim"], a["semantic_dim"]
        self.centers = nn.Parameter(torch.randn(a["num_seen"], semantics).to(device))
        self.encoder = VAEEncoder(features, semantics, a["encoder_hidden"], semantics).to(device)
        self.generator = ConditionalGenerator(a["noise_dim"], semantics, a["generator_hidden"],
                                              features, output="sigmoid").to(device)
        self.critic = ConditionalCritic(features, semantics, a["critic_hidden"]).to(device)
        self.refinement = FeatureRefinement(features, a["refinement_hidden"], semantics,
                                            a["num_seen"]).to(device)
        betas = (c.beta1, 0.999)
        self.optimizer_e = adam(self.encoder.parameters(), c.lr, _ENCODER_BETAS)
        self.optimizer_d = adam(self.critic.parameters(), c.lr, betas)
        self.optimizer_g = adam(self.generator.parameters(), c.lr, betas)
        self.optimizer_fr = adam(self.refinement.parameters(), c.refinement_lr, betas)
        self.optimizer_centers = adam([self.centers], c.lr, betas)

    def _architecture_for(self, data: TaskTensors) -> dict[str, int]:
        c = self.config
        num_seen, semantic_dim = data.seen_semantics.shape
        # noise = latent = attSize (config.py:70): G's input is 2 * latent_size (model.py:50)
        return dict(feature_dim=int(data.features.shape[1]), semantic_dim=int(semantic_dim),
                    noise_dim=int(semantic_dim), num_seen=int(num_seen),
                    encoder_hidden=c.encoder_hidden, generator_hidden=c.generator_hidden,
                    critic_hidden=c.critic_hidden, refinement_hidden=c.refinement_hidden)

    def _stateful(self) -> dict[str, Any]:
        return {"encoder": self.encoder, "generator": self.generator, "critic": self.critic,
                "refinement": self.refinement, "optimizer_e": self.optimizer_e,
                "optimizer_g": self.optimizer_g, "optimizer_d": self.optimizer_d,
                "optimizer_fr": self.optimizer_fr, "optimizer_centers": self.optimizer_centers,
                "classifiers": self.classifiers}

    def _extra_state(self) -> dict[str, Any]:
        """The centres and, in bug mode, their never-cleared gradient."""
        return {"centers": self.centers.detach(), "centers_grad": self.centers.grad}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.centers.copy_(state["centers"])
        grad = state["centers_grad"]
        self.centers.grad = None if grad is None else grad.to(self.device).clone()

    def _check_config(self) -> None:
        super()._check_config()
        c = self.config
        check_options(c, at_least_one=("encoder_hidden", "generator_hidden", "critic_hidden",
                                       "refinement_hidden", "passes_per_epoch"),
                      non_negative=("gp_weight", "gamma_d", "gamma_g", "recons_weight",
                                    "center_weight", "center_margin"),
                      positive=("lr", "refinement_lr"))
        if not 0.0 <= c.incenter_weight <= 1.0:
            raise UnseenInputError(f"option 'incenter_weight': expected a number in [0, 1], "
                                   f"found {c.incenter_weight}")
        if c.samc_negative not in NEGATIVES:
            raise UnseenInputError(f"option 'samc_negative': expected one of "
                                   f"{', '.join(NEGATIVES)}, found {c.samc_negative!r}")

    def _on_start(self, data: TaskTensors, fresh: bool) -> None:
        """Class semantics divided by their L2 norm (util.py:50), for training and synthesis."""
        data.seen_semantics = self._class_semantics(data.seen_semantics)
        data.unseen_semantics = self._class_semantics(data.unseen_semantics)

    def _class_semantics(self, semantics: torch.Tensor) -> torch.Tensor:
        """Rows divided by their L2 norm (`l2_semantics`)."""
        return _unit_rows(semantics) if self.config.l2_semantics else semantics

    # ---------------------------------------------------------------- training

    @property
    def _refinement_frozen(self) -> bool:
        """FR gets no weight gradient in the generator step (train_free.py:282-284)."""
        return self.config.freeze_refinement and self.config.recons_weight > 0

    def _critic_phase_modules(self) -> tuple[nn.Module, ...]:
        """D always; FR too when it is frozen in the generator step (both are unfrozen at the
        start of every generator iteration, train_free.py:208-212)."""
        return (self.critic, self.refinement) if self._refinement_frozen else (self.critic,)

    def _critic_step(self, data: TaskTensors, batch_size: int, pass_index: int = 0
                     ) -> tuple[Batch, dict[str, torch.Tensor]]:
        """One FR + centres step, then one D step, on a fresh batch (train_free.py:215-263).
        RNG order as the reference: randperm; E's eps (CPU) or the noise; FR(x)'s eps; the
        draws of the reference's dead code (FR(x~)'s eps, its unused FR penalty's alpha and
        eps); the SAMC negatives (random); the penalty's alpha."""
        c = self.config
        batch = random_batch(data.features, data.labels, data.seen_semantics, batch_size)
        rows, semantic_dim = batch.features.shape[0], self.architecture["semantic_dim"]
        self._encoding = None
        if c.encoded_noise:
            # E is not updated before the generator step, which uses this batch and draws a
            # new eps: its pass is kept (with its graph) for that step.
            mu, logvar = self.encoder(batch.features, batch.semantics)
            self._encoding = (batch, mu, logvar)
            noise = reparameterize(mu.detach(), logvar.detach(), cpu_noise=True)
        else:
            noise = torch.randn(rows, semantic_dim, device=self.device)
        with torch.no_grad():  # only the detached fake is used here
            fake = self.generator(noise, batch.semantics)
        # -- FR and the centres: SAMC on mu(x) and the weighted-L1 reconstruction of real x
        self.optimizer_fr.zero_grad(set_to_none=True)
        if not c.replicate_reference_bugs:
            self.centers.grad = None  # the reference never clears it (free.md §3.1.1)
        refined = self.refinement(batch.features)
        reconstruction = c.recons_weight * weighted_l1(refined.reconstruction, batch.semantics)
        torch.randn(rows, semantic_dim, device=self.device)  # FR(x~), unused (:238)
        torch.rand(rows, 1)  # the unused FR penalty (:240): its alpha, then its FR eps
        torch.randn(rows, semantic_dim, device=self.device)
        center = samc_loss(refined.mu, batch.labels, self.centers, c.center_margin,
                           c.incenter_weight, c.samc_negative)
        (c.center_weight * center + reconstruction).backward()
        self.optimizer_fr.step()
        self.optimizer_centers.step()
        # -- D: gammaD * (WGAN critic loss + penalty)
        alpha = torch.rand(rows, 1).to(self.device)
        loss, terms = critic_loss(self.critic, batch.features, fake, batch.semantics, alpha,
                                  self.penalty, scale=c.gamma_d)
        self.optimizer_d.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_d.step()
        terms.update(center_loss=center, real_reconstruction=reconstruction,
                     generator_output_max=fake.amax())
        return batch, {name: value.detach() for name, value in terms.items()}

    def _generator_step(self, batch: Batch, pass_index: int = 0) -> dict[str, torch.Tensor]:
        """One E + G step on the last critic batch (train_free.py:280-328): VAE loss, gammaG
        times the adversarial term, recons_weight times FR's weighted L1 on the fake. D is
        frozen, FR too with `freeze_refinement` (gradients still reach G through them)."""
        c = self.config
        if self._encoding is not None and self._encoding[0] is batch:
            _, mu, logvar = self._encoding
        else:
            mu, logvar = self.encoder(batch.features, batch.semantics)
        self._encoding = None
        reconstruction = self.generator(reparameterize(mu, logvar, cpu_noise=True),
                                        batch.semantics)
        if not bool(torch.isfinite(reconstruction).all()):  # BCE refuses it (a CUDA assert)
            raise TrainingDivergedError("FREE: the generator's reconstruction is not finite; "
                                        "the last good checkpoint is the previous epoch's")
        vae = vae_loss(reconstruction, batch.features, mu, logvar)
        if c.encoded_noise:
            fake = reconstruction
        else:
            noise = torch.randn(batch.features.shape[0], self.architecture["noise_dim"],
                                device=self.device)
            fake = self.generator(noise, batch.semantics)
        adversarial = -self.critic(fake, batch.semantics).mean()
        cycle = weighted_l1(self.refinement(fake).reconstruction, batch.semantics)
        loss = vae + c.gamma_g * adversarial + c.recons_weight * cycle
        for optimizer in (self.optimizer_e, self.optimizer_g, self.optimizer_fr):
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_e.step()
        self.optimizer_g.step()
        if not self._refinement_frozen:
            self.optimizer_fr.step()
        elif c.replicate_reference_bugs:
            # PyTorch 1.x: zero_grad left zeros, and the unconditional optimizerFR.step() (:328)
            # moved FR by Adam's momentum anyway (free.md §3.1.2).
            for parameter in self.refinement.parameters():
                if parameter in self.optimizer_fr.state:
                    parameter.grad = torch.zeros_like(parameter)
            self.optimizer_fr.step()
        return {"generator_loss": loss.detach(), "vae_loss": vae.detach(),
                "generator_adversarial": adversarial.detach(),
                "fake_reconstruction": cycle.detach()}

    def _epoch_losses(self, losses: dict[str, float]) -> dict[str, float]:
        """The reference prints the gammaD-scaled Wasserstein estimate; also lambda."""
        losses["wasserstein_distance"] *= self.config.gamma_d
        losses["gp_weight"] = self.penalty.weight
        return losses

    # ---------------------------------------------------------------- evaluation

    def _before_classifier(self, feature_dim: int, num_classes: int) -> bool:
        """The reference's `CLASSIFIER` builds `LINEAR_LOGSOFTMAX(feature_dim, K)`, replaces it
        by the real `LINEAR_LOGSOFTMAX(D + H + A, K)` (`classifier.py:35, 42`), and only then
        transforms the rows (FR's eps draws, `_classifier_sets`): both default inits' draws
        here, on the CPU generator as there (the model moves to the GPU later). True: the
        classifier skips its own default-init draws."""
        a = self.architecture
        nn.Linear(feature_dim, num_classes)
        nn.Linear(feature_dim + a["refinement_hidden"] + a["semantic_dim"], num_classes)
        return True

    @torch.no_grad()
    def _classifier_sets(self, data: TaskTensors, generated: torch.Tensor, where: str
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The reference's `compute_fear_out` order (`classifier.py:43-46, 217-242`): the
        [training ; generated] rows, then test_unseen, then test_seen, in blocks of the
        classifier batch (syn_num), one FR pass per block, each drawing eps [rows, A]. Bug mode
        reads Sigmoid(mu + sigma * eps); fixed mode draws the same eps unused and reads
        Sigmoid(mu): both keep the reference's random stream."""
        c = self.config
        block = c.classifier_batch_size or c.syn_num
        seen = data.eval_seen_count

        def refined(rows: torch.Tensor) -> torch.Tensor:
            return torch.cat([self.refinement.classifier_features(
                part, c.replicate_reference_bugs, draw_unused=True) for part in rows.split(block)])

        training = refined(torch.cat([data.features, generated]))
        test_unseen = refined(data.eval_features[seen:])
        test_seen = refined(data.eval_features[:seen])
        for inputs in (training, test_unseen, test_seen):
            if not bool(torch.isfinite(inputs).all()):
                raise TrainingDivergedError(f"FREE: the classifier inputs are not finite "
                                            f"{where}")
        num_train = int(data.features.shape[0])
        return training[:num_train], training[num_train:], torch.cat([test_seen, test_unseen])

    def _classifier_inputs(self, features: torch.Tensor) -> torch.Tensor:
        """[x ; FR hidden ; Sigmoid(mu + sigma * eps)] with `replicate_reference_bugs` (the
        reference draws eps for every row, test rows included), else [x ; FR hidden ;
        Sigmoid(mu)]."""
        return self.refinement.classifier_features(features,
                                                   self.config.replicate_reference_bugs)


def _unit_rows(semantics: torch.Tensor) -> torch.Tensor:
    """Rows divided by their L2 norm, as util.py:50 (not F.normalize: the same arithmetic)."""
    norms = semantics.pow(2).sum(1).sqrt()
    if not bool((norms > 0).all()):
        raise UnseenInputError("FREE L2-normalises the class semantics and found an all-zero "
                               "row; set l2_semantics=false")
    return semantics / norms[:, None]
