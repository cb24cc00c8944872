"""FREE (Chen, Wang, Xia, Peng, You, Zheng, Shao, ICCV 2021): TF-VAEGAN's VAE-GAN feature
generator without the feedback module, plus a feature refinement module FR trained with a
self-adaptive margin centre loss (SAMC) and a semantic cycle-consistency loss; the final
softmax reads [x ; FR hidden ; FR semantic reconstruction] of real seen and generated unseen
features, retrained after every epoch.

Faithful to the authors' code as it runs (docs/methods/free.md): SAMC centres, E, G, D, FR
built in that order; per generator iteration `critic_iterations` steps, each an FR + centres
step then a D step on one fresh batch; then one E + G (+ FR) step on the last batch; two
identical passes over the data per epoch; adaptive lambda; no ZSL classifier.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any, ClassVar

import torch
from torch import nn

from unseen.data.tasks import GZSLTask
from unseen.errors import TrainingDivergedError, UnseenInputError
from unseen.methods import base
from unseen.methods.base import EpochReport, GZSLMethod, MethodConfig, TrainingMonitor
from unseen.methods.cegzsl.method import _TaskTensors as TaskTensors
from unseen.methods.free.config import FREEConfig
from unseen.methods.free.losses import samc_loss
from unseen.methods.free.networks import FeatureRefinement
from unseen.methods.free.presets import PRESETS
from unseen.methods.generative.candidates import CandidateClassifiers
from unseen.methods.generative.classifier import adam, train_classifier
from unseen.methods.generative.networks import (
    ConditionalCritic,
    ConditionalGenerator,
    VAEEncoder,
)
from unseen.methods.generative.synthesis import synthesize_per_class
from unseen.methods.generative.vae import reparameterize, vae_loss, weighted_l1
from unseen.methods.generative.wgan import Batch, GradientPenalty, critic_loss, random_batch

_CLASSIFIER_BETAS = (0.5, 0.999)  # train_free.py:343 passes beta1 0.5
_ENCODER_BETAS = (0.9, 0.999)  # train_free.py:134: Adam's defaults for E
_STATE_VERSION = 1


class FREE(GZSLMethod):
    """FREE with the reference's training loop and a once-per-epoch evaluation that yields one
    GZSL candidate per classifier epoch."""

    name: ClassVar[str] = "free"
    config_class: ClassVar[type[MethodConfig]] = FREEConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    input_kind: ClassVar[str] = "features"
    description: ClassVar[str] = ("FREE (ICCV 2021): VAE-GAN features + feature refinement "
                                  "with a self-adaptive margin centre loss")
    loss_keys: ClassVar[tuple[str, ...]] = (
        "critic_loss", "generator_loss", "wasserstein_distance", "gradient_penalty",
        "center_loss", "real_reconstruction", "fake_reconstruction", "vae_loss")

    def __init__(self, config: MethodConfig, seed: int) -> None:
        super().__init__(config if isinstance(config, FREEConfig)
                         else FREEConfig(**asdict(config)), seed)
        self.config: FREEConfig
        self.architecture: dict[str, int] = {}
        self.centers: nn.Parameter | None = None
        self.encoder: VAEEncoder | None = None
        self.generator: ConditionalGenerator | None = None
        self.critic: ConditionalCritic | None = None
        self.refinement: FeatureRefinement | None = None
        self.optimizers: dict[str, torch.optim.Adam] = {}
        self.penalty = GradientPenalty(self.config.gp_weight, self.config.adaptive_gp)
        self.classifiers = CandidateClassifiers("FREE")  # of the last evaluation
        self.rng = base.EpochRNG()

    # ---------------------------------------------------------------- construction

    def _build(self, architecture: dict[str, int]) -> None:
        """The SAMC centres (N(0, 1), on the CPU generator), then E, G, D and FR: the
        reference's order (train_free.py:45-59), which fixes the random stream."""
        a = self.architecture = dict(architecture)
        c, device = self.config, self.device
        features, semantics = a["feature_dim"], a["semantic_dim"]
        self.centers = nn.Parameter(torch.randn(a["num_seen"], semantics).to(device))
        # latent = noise = attSize: config.py:70, and G's input is 2 * latent_size
        self.encoder = VAEEncoder(features, semantics, a["encoder_hidden"], semantics).to(device)
        self.generator = ConditionalGenerator(semantics, semantics, a["generator_hidden"],
                                              features, output="sigmoid").to(device)
        self.critic = ConditionalCritic(features, semantics, a["critic_hidden"]).to(device)
        self.refinement = FeatureRefinement(features, a["refinement_hidden"], semantics,
                                            a["num_seen"]).to(device)
        betas = (c.beta1, 0.999)
        self.optimizers = {
            "encoder": adam(self.encoder.parameters(), c.lr, _ENCODER_BETAS),
            "critic": adam(self.critic.parameters(), c.lr, betas),
            "generator": adam(self.generator.parameters(), c.lr, betas),
            "refinement": adam(self.refinement.parameters(), c.refinement_lr, betas),
            "centers": adam([self.centers], c.lr, betas)}
        self.penalty = GradientPenalty(c.gp_weight, c.adaptive_gp)

    def _architecture_for(self, data: TaskTensors) -> dict[str, int]:
        c = self.config
        num_seen, semantic_dim = data.seen_semantics.shape
        return dict(feature_dim=int(data.features.shape[1]), semantic_dim=int(semantic_dim),
                    num_seen=int(num_seen), encoder_hidden=c.encoder_hidden,
                    generator_hidden=c.generator_hidden, critic_hidden=c.critic_hidden,
                    refinement_hidden=c.refinement_hidden)

    def _modules(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "generator": self.generator, "critic": self.critic,
                "refinement": self.refinement}

    # ---------------------------------------------------------------- training

    def fit(self, task: GZSLTask, monitor: TrainingMonitor) -> None:
        """Train epochs `start_epoch..epochs-1`; evaluate and report after each."""
        self.config.check()
        data = _task_tensors(task, self.device, self.config.l2_semantics)
        self._start(data)
        c = self.config
        num_train = int(data.features.shape[0])
        batch_size = min(c.batch_size, num_train)
        iterations = c.iterations_per_pass or math.ceil(num_train / batch_size)
        for epoch in range(self.start_epoch, c.epochs):
            losses = self._train_epoch(data, epoch, batch_size, iterations, monitor)
            report = self._evaluate(data, epoch, losses)
            self.start_epoch = epoch + 1
            self.rng.report(monitor, self, report)

    def _start(self, data: TaskTensors) -> None:
        """Seed and build (a fresh run), or check that the loaded checkpoint fits this task and
        put its RNG state back (a resumed run)."""
        architecture = self._architecture_for(data)
        if self.start_epoch == 0:
            base.seed_everything(self.seed)
            self._build(architecture)
            return
        if self.generator is None:
            raise RuntimeError("start_epoch > 0 but no state was loaded")
        if architecture != self.architecture:
            raise UnseenInputError(f"resuming FREE: the checkpoint's networks "
                                   f"{self.architecture} do not match this task and config "
                                   f"{architecture}")
        self.rng.restore_loaded()

    def _train_epoch(self, data: TaskTensors, epoch: int, batch_size: int, iterations: int,
                     monitor: TrainingMonitor) -> dict[str, float]:
        c = self.config
        for module in self._modules().values():
            module.train()
        terms: dict[str, torch.Tensor] = {}
        generator_terms: dict[str, torch.Tensor] = {}
        steps = monitor.progress(range(c.passes_per_epoch * iterations),
                                 f"FREE epoch {epoch + 1}/{c.epochs}",
                                 total=c.passes_per_epoch * iterations)
        for step in steps:  # `passes_per_epoch` identical passes (the feedback loop is gone)
            self.critic.requires_grad_(True)
            self.refinement.requires_grad_(True)
            for _ in range(c.critic_iterations):
                batch, terms = self._critic_step(data, batch_size)
            terms["gp_weight"] = torch.tensor(self.penalty.weight)
            self.penalty.update()  # train_free.py:272-276, before the generator step
            # One sync per iteration, before G's BCE (which refuses a non-finite input): this
            # iteration's critic terms (G's output among them), the last generator step's terms.
            _check_finite({**terms, **generator_terms},
                          f"epoch {epoch + 1}, generator iteration {step + 1}")
            generator_terms = self._generator_step(batch)
        _check_finite(generator_terms, f"epoch {epoch + 1}, the last generator iteration")
        terms.update(generator_terms)
        losses = {name: float(value) for name, value in terms.items()}
        losses["wasserstein_distance"] = c.gamma_d * (losses["critic_real"]
                                                      - losses["critic_fake"])
        return losses

    def _noise(self, batch: Batch) -> torch.Tensor:
        """The critic step's z: a sample of E(x, a) (eps on the CPU generator, as the
        reference's `torch.randn(...).cpu()`) with `encoded_noise`, else N(0, I)."""
        if self.config.encoded_noise:
            mu, logvar = self.encoder(batch.features, batch.semantics)
            return reparameterize(mu, logvar, cpu_noise=True)
        return torch.randn(batch.features.shape[0], self.architecture["semantic_dim"],
                           device=self.device)

    def _critic_step(self, data: TaskTensors, batch_size: int
                     ) -> tuple[Batch, dict[str, torch.Tensor]]:
        """One FR + centres step, then one D step, on a fresh batch (train_free.py:215-263).
        RNG order as the reference: randperm; E's eps or the noise; FR(x)'s eps; the draws of
        the reference's dead code (FR(x~)'s eps, its unused FR penalty's alpha and eps); the
        SAMC negatives (random); the penalty's alpha."""
        c = self.config
        batch = random_batch(data.features, data.labels, data.seen_semantics, batch_size)
        rows, semantic_dim = batch.features.shape[0], self.architecture["semantic_dim"]
        with torch.no_grad():  # only the detached fake is used here
            fake = self.generator(self._noise(batch), batch.semantics)
        # -- FR and the centres: SAMC on mu(x) and the weighted-L1 reconstruction of real x
        self.refinement.zero_grad(set_to_none=True)
        if not c.replicate_reference_bugs:
            self.centers.grad = None  # the reference never clears it (free.md §3.1.1)
        refined = self.refinement(batch.features)
        reconstruction = c.recons_weight * weighted_l1(refined.reconstruction, batch.semantics)
        torch.randn(rows, semantic_dim, device=self.device)  # FR(x~), unused (:238)
        torch.rand(rows, 1)  # the unused FR penalty (:240): alpha, then its FR eps
        torch.randn(rows, semantic_dim, device=self.device)
        center = samc_loss(refined.mu, batch.labels, self.centers, c.center_margin,
                           c.incenter_weight, c.samc_negative)
        (c.center_weight * center + reconstruction).backward()
        self.optimizers["refinement"].step()
        self.optimizers["centers"].step()
        # -- D: gammaD * (WGAN critic loss + penalty)
        alpha = torch.rand(rows, 1).to(self.device)
        loss, terms = critic_loss(self.critic, batch.features, fake, batch.semantics, alpha,
                                  self.penalty, scale=c.gamma_d)
        self.critic.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["critic"].step()
        terms.update(center_loss=center, real_reconstruction=reconstruction,
                     generator_output_max=fake.amax())
        return batch, {name: value.detach() for name, value in terms.items()}

    def _generator_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One E + G step on the last critic batch (train_free.py:280-328): VAE loss, gammaG
        times the adversarial term, recons_weight times FR's weighted L1 on the fake. D is
        frozen; FR too with `freeze_refinement` (gradients still reach G through it)."""
        c = self.config
        frozen = c.freeze_refinement and c.recons_weight > 0
        self.critic.requires_grad_(False)
        if frozen:
            self.refinement.requires_grad_(False)
        mu, logvar = self.encoder(batch.features, batch.semantics)
        reconstruction = self.generator(reparameterize(mu, logvar, cpu_noise=True),
                                        batch.semantics)
        vae = vae_loss(reconstruction, batch.features, mu, logvar)
        if c.encoded_noise:
            fake = reconstruction
        else:
            noise = torch.randn(batch.features.shape[0], self.architecture["semantic_dim"],
                                device=self.device)
            fake = self.generator(noise, batch.semantics)
        adversarial = -self.critic(fake, batch.semantics).mean()
        cycle = weighted_l1(self.refinement(fake).reconstruction, batch.semantics)
        loss = vae + c.gamma_g * adversarial + c.recons_weight * cycle
        for name in ("encoder", "generator", "refinement"):
            self.optimizers[name].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["encoder"].step()
        self.optimizers["generator"].step()
        if not frozen:
            self.optimizers["refinement"].step()
        elif c.replicate_reference_bugs:
            # PyTorch 1.x: zero_grad left zeros, and the unconditional optimizerFR.step() (:328)
            # moved FR by Adam's momentum anyway (free.md §3.1.2).
            for parameter in self.refinement.parameters():
                if parameter in self.optimizers["refinement"].state:
                    parameter.grad = torch.zeros_like(parameter)
            self.optimizers["refinement"].step()
        return {"generator_loss": loss.detach(), "vae_loss": vae.detach(),
                "generator_adversarial": adversarial.detach(),
                "fake_reconstruction": cycle.detach()}

    # ---------------------------------------------------------------- evaluation

    @property
    def _stochastic_features(self) -> bool:
        return self.config.replicate_reference_bugs

    def _classifier_inputs(self, features: torch.Tensor, block_rows: int) -> torch.Tensor:
        """[x ; FR hidden ; FR reconstruction] in blocks of `block_rows` rows (the reference's
        `compute_fear_out`, one eps draw per block)."""
        return torch.cat([self.refinement.classifier_features(block, self._stochastic_features)
                          for block in features.split(block_rows)])

    @torch.no_grad()
    def _evaluate(self, data: TaskTensors, epoch: int, losses: dict[str, float]) -> EpochReport:
        """Generate syn_num features per unseen class; train the GZSL softmax on the refined
        [real seen ; generated unseen]; one candidate per classifier epoch."""
        c = self.config
        for module in self._modules().values():
            module.eval()
        generated = synthesize_per_class(
            self.generator, data.unseen_semantics, c.syn_num, self.architecture["semantic_dim"],
            f"FREE at the evaluation after epoch {epoch + 1}")
        # classifier.py:35 builds a first classifier on x alone and replaces it: its init draws
        nn.Linear(data.features.shape[1], data.num_classes)
        block = c.classifier_batch_size or c.syn_num
        train_inputs = self._classifier_inputs(torch.cat([data.features, generated]), block)
        seen = data.eval_seen_count  # the reference refines test_unseen, then test_seen
        unseen_inputs = self._classifier_inputs(data.eval_features[seen:], block)
        eval_inputs = torch.cat([self._classifier_inputs(data.eval_features[:seen], block),
                                 unseen_inputs])
        self.classifiers.clear()
        gzsl = self.classifiers.collect("classifier_epoch", "gzsl", train_classifier(
            train_inputs,
            torch.cat([data.train_positions, data.unseen_positions.repeat_interleave(c.syn_num)]),
            eval_inputs, data.num_classes, c.classifier_epochs, block, c.classifier_lr,
            _CLASSIFIER_BETAS))
        return EpochReport(epoch=epoch, gzsl_candidates=gzsl, losses=losses)

    # ---------------------------------------------------------------- scoring and state

    @torch.no_grad()
    def scores(self, task: GZSLTask, inputs: torch.Tensor, candidate: str | None = None
               ) -> torch.Tensor:
        """A candidate softmax of the last evaluation (default: `default_candidate`) on the
        refined preprocessed features [n, D]: log-probabilities [n, K] over `task.classes`.
        With the reference's noisy features, the noise is drawn from a forked RNG."""
        if self.refinement is None:
            raise UnseenInputError("FREE model: expected a trained method, found no FR module")
        features = torch.as_tensor(inputs, dtype=torch.float32, device=self.device)
        self.refinement.eval()
        with torch.random.fork_rng(devices=[] if self.device.type == "cpu" else [self.device]):
            refined = self._classifier_inputs(features, max(1, features.shape[0]))
        return self.classifiers.scores(candidate or self.default_candidate, task, refined)

    @property
    def default_candidate(self) -> str:
        """The GZSL softmax after its last epoch (the one candidate the clean protocol
        reports)."""
        return f"classifier_epoch={self.config.classifier_epochs}"

    def state_dict(self) -> dict[str, Any]:
        """Everything for an exact resume: networks, centres (and their never-cleared gradient
        in bug mode), optimisers, lambda, classifiers, RNG. Tensors are the live ones."""
        if self.generator is None:
            raise RuntimeError("FREE has no state before fit()")
        return {"version": _STATE_VERSION, "config": asdict(self.config), "seed": self.seed,
                "epoch": self.start_epoch, "architecture": dict(self.architecture),
                "centers": self.centers.detach(), "centers_grad": self.centers.grad,
                "modules": {k: m.state_dict() for k, m in self._modules().items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "gradient_penalty": self.penalty.state_dict(),
                "classifiers": self.classifiers.state_dict(), "rng": self.rng.state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != _STATE_VERSION:
            raise UnseenInputError(f"FREE checkpoint: field 'version': expected "
                                   f"{_STATE_VERSION}, found {state.get('version')!r}")
        self._build(state["architecture"])
        with torch.no_grad():
            self.centers.copy_(state["centers"])
        grad = state.get("centers_grad")
        self.centers.grad = None if grad is None else grad.to(self.device).clone()
        for key, module in self._modules().items():
            module.load_state_dict(state["modules"][key])
        for key, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][key])
        self.penalty.load_state_dict(state["gradient_penalty"])
        self.classifiers.load_state_dict(state["classifiers"])
        self.start_epoch = int(state["epoch"])
        self.rng.load(state["rng"])


def _task_tensors(task: GZSLTask, device: torch.device, l2_semantics: bool) -> TaskTensors:
    if task.train_idx.size == 0 or task.unseen_classes.size == 0:
        raise UnseenInputError(f"task '{task.name}' of benchmark '{task.benchmark.name}': "
                               f"FREE needs training rows and unseen classes, found "
                               f"{task.train_idx.size} rows and {task.unseen_classes.size} "
                               f"unseen classes")
    data = TaskTensors.from_task(task, device)
    if l2_semantics:
        data.seen_semantics = _unit_rows(data.seen_semantics, task)
        data.unseen_semantics = _unit_rows(data.unseen_semantics, task)
    return data


def _unit_rows(semantics: torch.Tensor, task: GZSLTask) -> torch.Tensor:
    """Rows divided by their L2 norm, as util.py:50 (not F.normalize: the same arithmetic)."""
    norms = semantics.pow(2).sum(1).sqrt()
    if not bool((norms > 0).all()):
        raise UnseenInputError(f"task '{task.name}' of benchmark '{task.benchmark.name}': FREE "
                               f"L2-normalises class semantics, found an all-zero row (set "
                               f"l2_semantics=false)")
    return semantics / norms[:, None]


def _check_finite(terms: dict[str, torch.Tensor], where: str) -> None:
    """One device sync per generator iteration; names the first non-finite term."""
    device = next(iter(terms.values())).device
    values = torch.stack([value.float().reshape(()).to(device) for value in terms.values()])
    bad = (~torch.isfinite(values)).nonzero()
    if bad.numel():
        name = list(terms)[int(bad[0, 0])]
        raise TrainingDivergedError(f"FREE: '{name}' is {float(terms[name])} at {where}; "
                                    f"the last good checkpoint is the previous epoch's")
