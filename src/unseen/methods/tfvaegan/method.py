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
classifier, for the runner to select.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from unseen.data.tasks import GZSLTask
from unseen.errors import TrainingDivergedError, UnseenInputError
from unseen.methods import base
from unseen.methods.base import EpochReport, GZSLMethod, MethodConfig, TrainingMonitor, option
from unseen.methods.cegzsl.method import _TaskTensors as TaskTensors
from unseen.methods.generative.candidates import CandidateClassifiers
from unseen.methods.generative.classifier import adam, train_classifier
from unseen.methods.generative.networks import ConditionalCritic, ConditionalGenerator, VAEEncoder
from unseen.methods.generative.synthesis import synthesize_per_class
from unseen.methods.generative.vae import reparameterize
from unseen.methods.generative.wgan import Batch, GradientPenalty, critic_loss, random_batch
from unseen.methods.tfvaegan.losses import decoder_loss, generator_loss
from unseen.methods.tfvaegan.networks import Feedback, SemanticDecoder
from unseen.methods.tfvaegan.presets import PRESETS

_BETAS = (0.5, 0.999)  # the classifier's hard-coded beta1 (train_images.py:273, 282)
_ENCODER_BETAS = (0.9, 0.999)  # E's Adam keeps PyTorch's defaults (train_images.py:109)
_TRANSFORM_ROWS = 8192  # rows per no-grad Dec call when transforming features
_STATE_VERSION = 1


@dataclass
class TFVAEGANConfig(MethodConfig):
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


class TFVAEGAN(GZSLMethod):
    """TF-VAEGAN with the reference's training loop and a once-per-epoch evaluation that yields
    one candidate per classifier epoch."""

    name: ClassVar[str] = "tfvaegan"
    config_class: ClassVar[type[MethodConfig]] = TFVAEGANConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    input_kind: ClassVar[str] = "features"
    description: ClassVar[str] = ("TF-VAEGAN (ECCV 2020): VAE-GAN features with semantic "
                                  "decoder feedback")
    loss_keys: ClassVar[tuple[str, ...]] = (
        "critic_loss", "generator_loss", "wasserstein_distance", "gradient_penalty",
        "vae_loss", "fake_reconstruction", "real_reconstruction")

    # Built by `fit` (or `load_state_dict`); None before.
    encoder: VAEEncoder | None = None
    generator: ConditionalGenerator | None = None
    critic: ConditionalCritic | None = None
    feedback: Feedback | None = None
    decoder: SemanticDecoder | None = None

    def __init__(self, config: MethodConfig, seed: int) -> None:
        super().__init__(config if isinstance(config, TFVAEGANConfig)
                         else TFVAEGANConfig(**asdict(config)), seed)
        self.config: TFVAEGANConfig
        self.architecture: dict[str, int] = {}
        self.penalty = GradientPenalty(self.config.gp_weight, adaptive=self.config.adaptive_gp)
        self.classifiers = CandidateClassifiers("TF-VAEGAN")  # of the last evaluation
        self.rng = base.EpochRNG()
        self.optimizers: dict[str, torch.optim.Adam] = {}

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
        return {"encoder": self.encoder, "generator": self.generator, "critic": self.critic,
                "feedback": self.feedback, "decoder": self.decoder}

    def _check_config(self) -> None:
        c = self.config
        at_least = {1: ("batch_size", "encoder_hidden", "generator_hidden", "critic_hidden",
                        "critic_iterations", "passes_per_epoch", "syn_num",
                        "classifier_epochs", "zsl_classifier_epochs"),
                    0: ("iterations_per_epoch", "classifier_batch_size", "recons_weight",
                        "gamma_d", "gamma_g")}
        for minimum, keys in at_least.items():
            for key in keys:
                if getattr(c, key) < minimum:
                    raise UnseenInputError(f"option '{key}': expected >= {minimum}, "
                                           f"found {getattr(c, key)}")
        for key in ("lr", "feed_lr", "dec_lr", "classifier_lr", "gp_weight"):
            if not getattr(c, key) > 0:
                raise UnseenInputError(f"option '{key}': expected > 0, found {getattr(c, key)}")

    # ---------------------------------------------------------------- training

    def fit(self, task: GZSLTask, monitor: TrainingMonitor) -> None:
        """Train epochs `start_epoch..epochs-1`; evaluate and report after each."""
        self._check_config()
        data = task_tensors(task, self.device, self.config.l2_semantics)
        self._start(data)
        c = self.config
        num_train = int(data.features.shape[0])
        batch_size = min(c.batch_size, num_train)
        iterations = c.iterations_per_epoch or math.ceil(num_train / batch_size)
        for epoch in range(self.start_epoch, c.epochs):
            losses = self._train_epoch(data, epoch, batch_size, iterations, monitor)
            self.start_epoch = epoch + 1
            self.rng.report(monitor, self, self._evaluate(data, epoch, losses))

    def _start(self, data: TaskTensors) -> None:
        """Seed and build (a fresh run), or check that the loaded checkpoint fits this task
        and put its RNG state back (a resumed run)."""
        architecture = self._architecture_for(data)
        if self.start_epoch == 0:
            base.seed_everything(self.seed)
            self._build(architecture)
            self.penalty = GradientPenalty(self.config.gp_weight,
                                           adaptive=self.config.adaptive_gp)
            return
        if self.generator is None:
            raise RuntimeError("start_epoch > 0 but no state was loaded")
        if architecture != self.architecture:
            raise UnseenInputError(f"resuming TF-VAEGAN: the checkpoint's networks "
                                   f"{self.architecture} do not match this task and config "
                                   f"{architecture}")
        self.rng.restore_loaded()

    def _train_epoch(self, data: TaskTensors, epoch: int, batch_size: int, iterations: int,
                     monitor: TrainingMonitor) -> dict[str, float]:
        c = self.config
        terms: dict[str, torch.Tensor] = {}
        steps = monitor.progress(range(c.passes_per_epoch * iterations),
                                 f"TF-VAEGAN epoch {epoch + 1}/{c.epochs}",
                                 total=c.passes_per_epoch * iterations)
        for step in steps:
            pass_index, iteration = divmod(step, iterations)
            self.critic.requires_grad_(True)
            self.decoder.requires_grad_(True)
            for _ in range(c.critic_iterations):
                batch, terms = self._critic_step(data, batch_size, pass_index)
            # lambda adapts from the mean (||grad|| - 1)^2 of these critic steps
            deviation = self.penalty.update()
            self.critic.requires_grad_(False)
            if c.recons_weight > 0 and c.freeze_dec:
                self.decoder.requires_grad_(False)
            where = (f"epoch {epoch + 1}, pass {pass_index + 1}, generator iteration "
                     f"{iteration + 1}")
            try:
                terms.update(self._generator_step(batch, pass_index))
            except RuntimeError as error:  # BCE refuses a non-finite reconstruction
                if "between 0 and 1" not in str(error):
                    raise
                raise TrainingDivergedError(f"TF-VAEGAN: the reconstruction is not finite at "
                                            f"{where}; the last good checkpoint is the "
                                            f"previous epoch's") from None
            _check_finite(terms, where)
            if deviation is not None:
                terms["squared_deviation"] = torch.tensor(deviation)
            terms["gp_weight"] = torch.tensor(self.penalty.weight)
        # As the reference logs: the values of the last iteration.
        losses = {name: float(value) for name, value in terms.items()}
        losses["wasserstein_distance"] = losses["critic_real"] - losses["critic_fake"]
        return losses

    def _with_feedback(self, noise: torch.Tensor, semantics: torch.Tensor, weight: float,
                       source: torch.Tensor | None = None) -> torch.Tensor:
        """G's second pass: its hidden layer plus `weight` * F(Dec hidden of `source`, detached),
        `source` defaulting to G's first pass on the same input."""
        if source is None:
            with torch.no_grad():  # the first pass only feeds Dec, whose hidden is detached
                source = self.generator(noise, semantics)
        feedback = self.feedback(self.decoder.hidden(source))
        return self.generator(noise, semantics, feedback, weight)

    def _critic_step(self, data: TaskTensors, batch_size: int, pass_index: int
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

    def _generator_step(self, batch: Batch, pass_index: int) -> dict[str, torch.Tensor]:
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
        loss, terms = generator_loss(self.critic, self.decoder, reconstruction,
                                     batch.features, mu, logvar, fake, semantics, c.gamma_g,
                                     c.recons_weight)
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
    def transform(self, features: torch.Tensor) -> torch.Tensor:
        """The final classifier's input [x ; Dec(x) ; Dec hidden(x)] for rows [n, D]."""
        return torch.cat([self.decoder.transform(block)
                          for block in features.split(_TRANSFORM_ROWS)])

    @torch.no_grad()
    def _synthesize(self, semantics: torch.Tensor, per_class: int, what: str) -> torch.Tensor:
        """`per_class` features per row of `semantics`: G, then G with feedback weighted a2
        (`generate_syn_feature`, train_images.py:80-106)."""
        return synthesize_per_class(
            lambda noise, a: self._with_feedback(noise, a, self.config.a2), semantics,
            per_class, self.architecture["semantic_dim"], what)

    @torch.no_grad()
    def _evaluate(self, data: TaskTensors, epoch: int, losses: dict[str, float]) -> EpochReport:
        """Generate unseen features, transform every row, train the GZSL softmax on [real seen ;
        generated unseen] and the ZSL softmax on generated unseen; one candidate per
        classifier epoch. Both classifiers draw from the GAN's random stream, as in the
        reference's single script."""
        c = self.config
        num_unseen = int(data.unseen_semantics.shape[0])
        generated = self._synthesize(data.unseen_semantics, c.syn_num,
                                     f"TF-VAEGAN at the evaluation after epoch {epoch + 1}")
        transformed = self.transform(torch.cat([data.features, generated]))
        eval_transformed = self.transform(data.eval_features)
        batch = c.classifier_batch_size or c.syn_num
        self.classifiers.clear()
        gzsl = self.classifiers.collect("classifier_epoch", "gzsl", self._classifier(
            transformed,
            torch.cat([data.train_positions, data.unseen_positions.repeat_interleave(c.syn_num)]),
            eval_transformed, data.num_classes, batch))
        zsl = None
        if c.zsl_classifier:
            zsl = self.classifiers.collect("zsl_epoch", "zsl", self._classifier(
                transformed[data.features.shape[0]:],
                torch.arange(num_unseen, device=self.device).repeat_interleave(c.syn_num),
                eval_transformed[data.eval_seen_count:], num_unseen, batch,
                epochs=c.zsl_classifier_epochs))
        return EpochReport(epoch=epoch, gzsl_candidates=gzsl, zsl_candidates=zsl, losses=losses)

    def _classifier(self, train_x: torch.Tensor, train_y: torch.Tensor, eval_x: torch.Tensor,
                    num_classes: int, batch_size: int, epochs: int | None = None):
        """`train_classifier` on transformed rows. The reference first builds a classifier on
        the untransformed width and then replaces it (`classifier_images.py:29-35`): its
        default init still draws from the RNG, so it is drawn here too."""
        nn.Linear(self.architecture["feature_dim"], num_classes)
        return train_classifier(train_x, train_y, eval_x, num_classes,
                                epochs or self.config.classifier_epochs, batch_size,
                                self.config.classifier_lr, _BETAS)

    # ---------------------------------------------------------------- scoring and state

    @torch.no_grad()
    def scores(self, task: GZSLTask, inputs: torch.Tensor, candidate: str | None = None
               ) -> torch.Tensor:
        """A candidate softmax of the last evaluation (default: `default_candidate`) applied
        to the transform of preprocessed features [n, D]: log-probabilities [n, K] over
        `task.classes`, -inf on the seen columns for a ZSL candidate."""
        if self.decoder is None:
            raise UnseenInputError("TF-VAEGAN: expected a trained method, found no decoder")
        features = torch.as_tensor(inputs, dtype=torch.float32, device=self.device)
        name = candidate or self.selected_candidate or self.default_candidate
        return self.classifiers.scores(name, task, self.transform(features))

    @property
    def default_candidate(self) -> str:
        """The GZSL softmax after its last epoch (the one candidate the clean protocol
        reports)."""
        return f"classifier_epoch={self.config.classifier_epochs}"

    def state_dict(self) -> dict[str, Any]:
        """Everything for an exact resume, lambda included. Tensors are the live ones: save or
        copy at once."""
        if self.generator is None:
            raise RuntimeError("TF-VAEGAN has no state before fit()")
        return {"version": _STATE_VERSION, "config": asdict(self.config), "seed": self.seed,
                "epoch": self.start_epoch, "architecture": dict(self.architecture),
                "rng": self.rng.state(), "penalty": self.penalty.state_dict(),
                "classifiers": self.classifiers.state_dict(),
                "modules": {k: m.state_dict() for k, m in self._modules().items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != _STATE_VERSION:
            raise UnseenInputError(f"TF-VAEGAN checkpoint: field 'version': expected "
                                   f"{_STATE_VERSION}, found {state.get('version')!r}")
        self._build(state["architecture"])
        for key, module in self._modules().items():
            module.load_state_dict(state["modules"][key])
        for key, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][key])
        self.penalty.load_state_dict(state["penalty"])
        self.classifiers.load_state_dict(state["classifiers"])
        self.start_epoch = int(state["epoch"])
        self.rng.load(state["rng"])


def task_tensors(task: GZSLTask, device: torch.device, l2_semantics: bool) -> TaskTensors:
    """The task as tensors, class semantics L2-normalised per row if asked (the reference's
    `image_util.py:42`). The VAE's BCE needs training features in [0, 1]."""
    where = f"task '{task.name}' of benchmark '{task.benchmark.name}'"
    if task.train_idx.size == 0 or task.unseen_classes.size == 0:
        raise UnseenInputError(f"{where}: TF-VAEGAN needs training rows and unseen classes, "
                               f"found {task.train_idx.size} rows and "
                               f"{task.unseen_classes.size} unseen classes")
    data = TaskTensors.from_task(task, device)
    low, high = float(data.features.min()), float(data.features.max())
    if low < 0 or high > 1:
        raise UnseenInputError(f"{where}: TF-VAEGAN's BCE reconstruction needs training "
                               f"features in [0, 1], found [{low:.3g}, {high:.3g}]; use "
                               f"feature_preprocessing=minmax")
    if not l2_semantics:
        return data
    return dataclasses.replace(data, seen_semantics=_l2_rows(data.seen_semantics),
                               unseen_semantics=_l2_rows(data.unseen_semantics))


def _l2_rows(matrix: torch.Tensor) -> torch.Tensor:
    return matrix / matrix.norm(dim=1, keepdim=True)


def _check_finite(terms: dict[str, torch.Tensor], where: str) -> dict[str, float]:
    """The terms as floats (one device sync per generator iteration); raises on the first
    non-finite one."""
    values = dict(zip(terms, torch.stack([v.float().reshape(()) for v in terms.values()])
                      .tolist(), strict=True))
    for name, value in values.items():
        if not math.isfinite(value):
            raise TrainingDivergedError(f"TF-VAEGAN: '{name}' is {value} at {where}; the last "
                                        f"good checkpoint is the previous epoch's")
    return values
