"""TF-VAEGAN (Narayan, Gupta, Khan, Snoek, Shao, ECCV 2020): a VAE-GAN feature generator with a
semantic embedding decoder Dec, whose hidden layer feeds back into the generator through a
feedback module F, and whose outputs extend the features the final classifier sees.

Faithful to the authors' code as it runs (docs/methods/tfvaegan.md): E, G, D, F, Dec built in
that order; two passes over the data per epoch, the second with feedback (a1) and F updates;
per generator iteration, `critic_iterations` steps of [Dec on real features, then D] on fresh
random batches, lambda adapted from their gradient norms, then one step of E, G (F in pass 1,
Dec unless `freeze_dec`) on the last critic batch. Every epoch synthesises unseen features with
feedback (a2), maps every row to [x ; Dec(x) ; Dec hidden(x)] and yields one GZSL candidate per
classifier epoch and, with `zsl_classifier`, one ZSL candidate per epoch of the unseen-only
classifier (on the GAN's random stream, as the reference's single script). The loop, the
evaluation and the state are the shared `GenerativeMethod`'s; this file holds the hooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from unseen.errors import TrainingDivergedError, UnseenInputError
from unseen.methods.base import MethodConfig, option
from unseen.methods.generative.classifier import adam
from unseen.methods.generative.data import TaskTensors
from unseen.methods.generative.networks import ConditionalCritic, ConditionalGenerator, VAEEncoder
from unseen.methods.generative.synthesis import synthesize_per_class
from unseen.methods.generative.trainer import GenerativeMethod, SpeedOptions, check_options
from unseen.methods.generative.vae import reparameterize
from unseen.methods.generative.wgan import Batch, critic_loss, random_batch
from unseen.methods.tfvaegan.losses import decoder_loss, generator_loss
from unseen.methods.tfvaegan.networks import Feedback, SemanticDecoder
from unseen.methods.tfvaegan.presets import PRESETS

_ENCODER_BETAS = (0.9, 0.999)  # E's Adam keeps PyTorch's defaults (train_images.py:109)
_NETWORKS = ("encoder", "generator", "critic", "feedback", "decoder")


@dataclass
class TFVAEGANConfig(SpeedOptions):
    """Hyperparameters (`--name` = the reference's flag). Defaults: the values every official
    script shares; where the scripts differ, the CUB script's (the code's defaults are not a
    setting any script runs). Presets hold each script.

    The latent and noise width is the semantic width (the reference overwrites --latent_size
    and every script passes nz = attSize). `batch_size` is clamped to the training rows.
    """

    epochs: int = option(300, "training epochs [--nepoch; scripts 120-500]")
    batch_size: int = option(64, "real features per critic step [--batch_size]")
    encoder_hidden: int = option(4096, "encoder hidden width [encoder_layer_sizes[-1]]")
    generator_hidden: int = option(4096, "generator hidden width = feedback width = decoder "
                                         "hidden width [decoder_layer_sizes[0] = --ngh]")
    critic_hidden: int = option(4096, "critic hidden width [--ndh; code default 1024, every "
                                      "script 4096]")
    critic_iterations: int = option(5, "critic steps per generator step [--critic_iter]")
    passes_per_epoch: int = option(2, "passes over the data per epoch, the second with "
                                      "feedback [--feedback_loop]")
    iterations_per_epoch: int = option(0, "generator steps per pass; 0: ceil(N_train / "
                                          "batch_size), as the reference")
    lr: float = option(1e-4, "Adam learning rate of E, G and D [--lr; AWA2 1e-5, SUN 1e-3]")
    beta1: float = option(0.5, "Adam beta1 of G, D, F and Dec [--beta1]; E keeps 0.9")
    feed_lr: float = option(1e-5, "Adam learning rate of the feedback module [--feed_lr]")
    dec_lr: float = option(1e-4, "Adam learning rate of the semantic decoder [--dec_lr]")
    gp_weight: float = option(10.0, "initial gradient-penalty weight lambda [--lambda1]")
    adaptive_gp: bool = option(True, "adapt lambda after every generator iteration (x1.1 "
                                     "above 1.05, /1.1 below 1.001), as the reference")
    gamma_d: float = option(10.0, "weight of the critic loss, penalty included [--gammaD; "
                                  "SUN 1]")
    gamma_g: float = option(10.0, "weight of the generator's adversarial loss [--gammaG; "
                                  "SUN 1]")
    recons_weight: float = option(0.01, "weight of the decoder's semantic reconstruction "
                                        "[--recons_weight; AWA2 0.1]")
    freeze_dec: bool = option(False, "no decoder update in the generator step [--freeze_dec; "
                                     "AWA2 only]")
    encoded_noise: bool = option(True, "the critic's fakes from encoder samples of real "
                                       "features, not N(0, I) noise [--encoded_noise; all "
                                       "scripts but FLO]")
    a1: float = option(1.0, "feedback weight in training [--a1]")
    a2: float = option(1.0, "feedback weight at synthesis [--a2]")
    l2_semantics: bool = option(True, "L2-normalise every class's semantic vector, as the "
                                      "reference's loader (a no-op on xlsa17 att)")
    syn_num: int = option(300, "generated features per unseen class [--syn_num]")
    classifier_lr: float = option(1e-3, "final classifier learning rate [--classifier_lr; "
                                        "SUN 5e-4]")
    classifier_epochs: int = option(25, "final classifier epochs, one candidate each "
                                        "(hard-coded, train_images.py:274)")
    classifier_batch_size: int = option(0, "final classifier batch; 0: syn_num (the "
                                           "reference's coupling)")
    zsl_classifier: bool = option(True, "also train the unseen-only classifier (the T1 "
                                        "candidates), as the reference after every epoch")
    zsl_classifier_epochs: int = option(25, "ZSL classifier epochs (hard-coded, "
                                            "train_images.py:283)")


class TFVAEGAN(GenerativeMethod):
    """TF-VAEGAN with the reference's training loop and a once-per-epoch evaluation that yields
    one candidate per classifier epoch."""

    name: ClassVar[str] = "tfvaegan"
    label: ClassVar[str] = "TF-VAEGAN"
    # G with feedback F synthesises; Dec makes the classifier input [x ; Dec(x) ; Dec hidden]
    inference_parts: ClassVar[tuple[str, ...]] = ("generator", "feedback", "decoder")
    config_class: ClassVar[type[MethodConfig]] = TFVAEGANConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    input_kind: ClassVar[str] = "features"
    description: ClassVar[str] = ("TF-VAEGAN (ECCV 2020): VAE-GAN features with semantic "
                                  "decoder feedback")
    loss_keys: ClassVar[tuple[str, ...]] = (
        "critic_loss", "generator_loss", "wasserstein_distance", "gradient_penalty",
        "vae_loss", "fake_reconstruction", "real_reconstruction")

    config: TFVAEGANConfig
    # Built by `fit` (or `load_state_dict`) with G and D; None before.
    encoder: VAEEncoder | None = None
    feedback: Feedback | None = None
    decoder: SemanticDecoder | None = None
    optimizers: dict[str, torch.optim.Adam]

    # ---------------------------------------------------------------- construction

    def _build(self, architecture: dict[str, int]) -> None:
        """E, G, D, F, Dec in the reference's order (their default inits fix the RNG stream,
        train_images.py:30-35), and their Adam optimisers (`:109-113`)."""
        a = self.architecture = dict(architecture)
        feature_dim, semantic_dim, hidden = (a["feature_dim"], a["semantic_dim"],
                                             a["generator_hidden"])
        self.encoder = VAEEncoder(feature_dim, semantic_dim, a["encoder_hidden"],
                                  semantic_dim).to(self.device)
        self.generator = ConditionalGenerator(semantic_dim, semantic_dim, hidden, feature_dim,
                                              output="sigmoid").to(self.device)
        self.critic = ConditionalCritic(feature_dim, semantic_dim, a["critic_hidden"]).to(
            self.device)
        self.feedback = Feedback(hidden).to(self.device)
        self.decoder = SemanticDecoder(feature_dim, hidden, semantic_dim).to(self.device)
        c = self.config
        betas = (c.beta1, 0.999)
        self.optimizers = {
            "encoder": adam(self.encoder.parameters(), c.lr, _ENCODER_BETAS),
            "critic": adam(self.critic.parameters(), c.lr, betas),
            "generator": adam(self.generator.parameters(), c.lr, betas),
            "feedback": adam(self.feedback.parameters(), c.feed_lr, betas),
            "decoder": adam(self.decoder.parameters(), c.dec_lr, betas)}

    def _architecture_for(self, data: TaskTensors) -> dict[str, int]:
        c = self.config
        return dict(feature_dim=int(data.features.shape[1]),
                    semantic_dim=int(data.seen_semantics.shape[1]),
                    encoder_hidden=c.encoder_hidden, generator_hidden=c.generator_hidden,
                    critic_hidden=c.critic_hidden)

    def _modules(self) -> dict[str, nn.Module]:
        return {name: getattr(self, name) for name in _NETWORKS}

    def _stateful(self) -> dict[str, Any]:
        return {**self._modules(),
                **{f"optimizer_{name}": opt for name, opt in self.optimizers.items()},
                "classifiers": self.classifiers}

    def _check_config(self) -> None:
        super()._check_config()
        check_options(self.config,
                      at_least_one=("encoder_hidden", "generator_hidden", "critic_hidden",
                                    "passes_per_epoch"),
                      non_negative=("recons_weight", "gamma_d", "gamma_g"),
                      positive=("lr", "feed_lr", "dec_lr", "gp_weight"))

    def _on_start(self, data: TaskTensors, fresh: bool) -> None:
        """The reference's data conventions, checked and applied to the task's tensors:
        semantics L2-normalised per class (`image_util.py:42`), training features in [0, 1]
        (the VAE's BCE target)."""
        low, high = float(data.features.min()), float(data.features.max())
        if low < 0 or high > 1:
            raise UnseenInputError(f"TF-VAEGAN's BCE reconstruction needs training features "
                                   f"in [0, 1], found [{low:.3g}, {high:.3g}]; use "
                                   f"feature_preprocessing=minmax")
        data.seen_semantics = self._class_semantics(data.seen_semantics)
        data.unseen_semantics = self._class_semantics(data.unseen_semantics)

    def _class_semantics(self, semantics: torch.Tensor) -> torch.Tensor:
        """L2-normalised rows (`l2_semantics`, `image_util.py:42`)."""
        return _l2_rows(semantics) if self.config.l2_semantics else semantics

    def _critic_phase_modules(self) -> tuple[nn.Module, ...]:
        """D always; Dec too when `freeze_dec` keeps it out of the generator step
        (`train_images.py:146-150, 201-205`)."""
        if self.config.recons_weight > 0 and self.config.freeze_dec:
            return (self.critic, self.decoder)
        return (self.critic,)

    def _epoch_losses(self, losses: dict[str, float]) -> dict[str, float]:
        losses["gp_weight"] = self.penalty.weight  # lambda after the epoch's last update
        return losses

    # ---------------------------------------------------------------- training steps

    def _with_feedback(self, noise: torch.Tensor, semantics: torch.Tensor, weight: float,
                       source: torch.Tensor | None = None) -> torch.Tensor:
        """G's second pass: its hidden layer plus `weight` * F(Dec hidden of `source`, detached),
        `source` defaulting to G's first pass on the same input."""
        if source is None:
            with torch.no_grad():  # the first pass only feeds Dec, whose hidden is detached
                source = self.generator(noise, semantics)
        feedback = self.feedback(self.decoder.hidden(source))
        return self.generator(noise, semantics, feedback, weight)

    def _critic_step(self, data: TaskTensors, batch_size: int, pass_index: int = 0
                     ) -> tuple[Batch, dict[str, torch.Tensor]]:
        """One Dec step on real features, then one D step, on a fresh random batch. RNG order
        as the reference: randperm (batch), encoder eps on the CPU or noise, rand (alpha)."""
        c = self.config
        batch = random_batch(data.features, data.labels, data.seen_semantics, batch_size)
        real_reconstruction = decoder_loss(self.decoder, batch.features, batch.semantics,
                                           c.recons_weight)
        self.optimizers["decoder"].zero_grad(set_to_none=True)
        real_reconstruction.backward()
        self.optimizers["decoder"].step()
        with torch.no_grad():  # the reference uses only the detached fake here
            if c.encoded_noise:
                z = reparameterize(*self.encoder(batch.features, batch.semantics),
                                   cpu_noise=True)
            else:
                z = torch.randn(batch_size, self.architecture["semantic_dim"],
                                device=self.device).to(batch.features)
            if pass_index == 1:
                fake = self._with_feedback(z, batch.semantics, c.a1)
            else:
                fake = self.generator(z, batch.semantics)
        alpha = torch.rand(batch_size, 1).to(batch.features)
        loss, terms = critic_loss(self.critic, batch.features, fake, batch.semantics, alpha,
                                  self.penalty, c.gamma_d)
        self.optimizers["critic"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["critic"].step()
        terms["real_reconstruction"] = real_reconstruction
        return batch, {name: value.detach() for name, value in terms.items()}

    def _generator_step(self, batch: Batch, pass_index: int = 0) -> dict[str, torch.Tensor]:
        """One step of E and G (F in pass 1, Dec unless frozen) on the last critic batch; D is
        frozen (no gradient). RNG: the encoder's eps (CPU), then noise when not encoded."""
        c = self.config
        semantics = batch.semantics
        mu, logvar = self.encoder(batch.features, semantics)
        z = reparameterize(mu, logvar, cpu_noise=True)
        if pass_index == 1:
            reconstruction = self._with_feedback(z, semantics, c.a1)
        else:
            reconstruction = self.generator(z, semantics)
        if c.encoded_noise:
            fake = reconstruction
        else:
            noise = torch.randn(z.shape, device=self.device).to(z)
            if pass_index == 1:
                # The reference feeds back Dec(reconstruction)'s hidden, not Dec(fake)'s
                # (train_images.py:235-240; only FLO runs without encoded noise).
                source = reconstruction.detach() if c.replicate_reference_bugs else None
                fake = self._with_feedback(noise, semantics, c.a1, source)
            else:
                fake = self.generator(noise, semantics)
        try:
            loss, terms = generator_loss(self.critic, self.decoder, reconstruction,
                                         batch.features, mu, logvar, fake, semantics,
                                         c.gamma_g, c.recons_weight)
        except RuntimeError as error:  # BCE refuses a non-finite reconstruction
            if "between 0 and 1" not in str(error):
                raise
            raise TrainingDivergedError(f"TF-VAEGAN: the reconstruction is not finite in a "
                                        f"generator step of pass {pass_index + 1}; the last "
                                        f"good checkpoint is the previous epoch's") from None
        stepped = ["encoder", "generator"]
        if pass_index == 1:
            stepped.append("feedback")
        if c.recons_weight > 0 and not c.freeze_dec:
            stepped.append("decoder")
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for name in stepped:
            self.optimizers[name].step()
        return {name: value.detach() for name, value in terms.items()}

    # ---------------------------------------------------------------- evaluation

    @torch.no_grad()
    def _synthesize(self, semantics: torch.Tensor, per_class: int, what: str) -> torch.Tensor:
        """`per_class` features per row of `semantics`: G, then G with feedback weighted a2
        (`generate_syn_feature`, train_images.py:80-106)."""
        return synthesize_per_class(
            lambda noise, a: self._with_feedback(noise, a, self.config.a2), semantics,
            per_class, self.architecture["semantic_dim"], what)

    def _before_classifier(self, feature_dim: int, num_classes: int) -> bool:
        """The reference's `CLASSIFIER` first builds `LINEAR_LOGSOFTMAX(feature_dim, K)` and
        replaces it (`classifier_images.py:29, 35`): its default init's draws, on the CPU
        generator as there (the reference moves its model to the GPU only later). Its
        transform draws nothing, so the real classifier's draws can stay in the classifier."""
        nn.Linear(feature_dim, num_classes)
        return False

    @torch.no_grad()
    def _classifier_inputs(self, features: torch.Tensor) -> torch.Tensor:
        """[x ; Dec(x) ; Dec hidden(x)] (`classifier_images.py:206-220`)."""
        return self.decoder.transform(features)


def _l2_rows(matrix: torch.Tensor) -> torch.Tensor:
    norms = matrix.norm(dim=1, keepdim=True)
    if not bool((norms > 0).all()):
        raise UnseenInputError("TF-VAEGAN L2-normalises the class semantics and found an "
                               "all-zero row; set l2_semantics=false")
    return matrix / norms
