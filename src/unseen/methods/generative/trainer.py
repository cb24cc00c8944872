"""`GenerativeMethod`: the training loop, evaluation and state that f-CLSWGAN, CE-GZSL,
TF-VAEGAN and FREE share (docs/methods/generative-skeleton.md §2.6); CADA-VAE reuses all of it
but the GAN epoch and the classifier's training set.

An epoch, as the references run it: `passes_per_epoch` x `iterations` generator iterations,
each `critic_iterations` critic steps on fresh random batches then one generator step on the
last critic batch; then `_end_of_epoch`; then the evaluation: synthesise unseen features,
apply the method's feature transform, retrain the GZSL softmax on [real seen ; synthetic
unseen] and, optionally, the ZSL softmax on synthetic unseen features, one candidate per
classifier epoch each; then the report, with the RNG state of the epoch's end around it.

A method subclasses `GenerativeMethod`, sets `label` (its name in messages) and the usual
`GZSLMethod` class attributes, and implements the hooks:
`_architecture_for`, `_build`, `_stateful`, `_critic_step`, `_generator_step`; optionally
`_critic_phase_modules`, `_on_start`, `_class_semantics`, `_end_of_epoch`, `_epoch_losses`,
`_synthesize`,
`_classifier_inputs`, `_before_classifier`, `_classifier_sets`, `_extra_state` /
`_load_extra_state`, `_check_config`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from unseen.data.tasks import GZSLTask
from unseen.errors import TrainingDivergedError, UnseenInputError
from unseen.methods import onednn
from unseen.methods.base import (
    EpochReport,
    EpochRNG,
    GZSLMethod,
    MethodConfig,
    TrainingMonitor,
    option,
    seed_everything,
)
from unseen.methods.generative.candidates import CandidateClassifiers
from unseen.methods.generative.classifier import train_classifier
from unseen.methods.generative.data import TaskTensors, task_tensors
from unseen.methods.generative.networks import ConditionalCritic, ConditionalGenerator
from unseen.methods.generative.synthesis import BLOCK_ROWS, synthesize_per_class
from unseen.methods.generative.wgan import Batch, GradientPenalty

CLASSIFIER_BETAS = (0.5, 0.999)  # hard-coded in every reference's final-classifier call


class GenerativeConfig(Protocol):
    """The config fields `GenerativeMethod` reads (each method's dataclass declares them, with
    its reference's flag in the help). Optional, read with a default when absent:
    `passes_per_epoch` (1; TF-VAEGAN and FREE: 2), `gp_weight` (10), `adaptive_gp` (False),
    `zsl_syn_num` (0 = syn_num), `zsl_classifier_lr` (0 = classifier_lr)."""

    epochs: int
    batch_size: int  # clamped to the training rows (the references need B <= N)
    critic_iterations: int
    iterations_per_epoch: int  # 0: ceil(N / batch_size), as the references
    syn_num: int
    classifier_lr: float
    classifier_epochs: int
    classifier_batch_size: int  # 0: syn_num (the references' coupling)
    zsl_classifier: bool
    zsl_classifier_epochs: int


@dataclass
class SpeedOptions(MethodConfig):
    """Two speed options every generative method accepts (docs/methods/fclswgan.md §9.6.1)."""

    onednn_matmul: bool = option(False, "the networks' Linear layers on oneDNN's fp32 GEMM "
                                        "(CPU): 1.6-2x MKL's speed on AVX-512 AMD CPUs, "
                                        "last-bit float differences; false: MKL")
    retain_freed_memory: bool = option(False, "glibc serves every block from the heap and "
                                              "keeps freed memory (process-wide): no page "
                                              "faults on the per-step buffers; same results")


def check_options(config: MethodConfig, at_least_one: Iterable[str] = (),
                  non_negative: Iterable[str] = (), positive: Iterable[str] = ()) -> None:
    """One clear error for the first option out of its range."""
    for minimum, keys in ((1, at_least_one), (0, non_negative)):
        for key in keys:
            if getattr(config, key) < minimum:
                raise UnseenInputError(f"option '{key}': expected >= {minimum}, "
                                       f"found {getattr(config, key)}")
    for key in positive:
        if not getattr(config, key) > 0:
            raise UnseenInputError(f"option '{key}': expected > 0, found {getattr(config, key)}")


class GenerativeMethod(GZSLMethod):
    """The shared fit / evaluate / scores / state of the feature-generating methods."""

    label: ClassVar[str]  # the method's name in messages, e.g. "f-CLSWGAN"
    state_version: ClassVar[int] = 1
    # True where the reference trains the ZSL classifier in a separate script (f-CLSWGAN):
    # its random draws must then not shift the GAN's stream.
    zsl_rng_isolated: ClassVar[bool] = False
    # The `_stateful` parts (or "part.submodule") that `scores` and added classes read: all a
    # model directory keeps besides the final classifiers (`generative.inference`).
    inference_parts: ClassVar[tuple[str, ...]] = ("generator",)
    # The GAN methods' networks and optimisers, built by `fit` (or `load_state_dict`).
    generator: ConditionalGenerator | None = None
    critic: ConditionalCritic | None = None
    optimizer_d: torch.optim.Adam | None = None
    optimizer_g: torch.optim.Adam | None = None

    def __init__(self, config: MethodConfig, seed: int) -> None:
        if not isinstance(config, self.config_class):
            config = self.config_class(**asdict(config))
        super().__init__(config, seed)
        self.architecture: dict[str, int] = {}
        self.classifiers = CandidateClassifiers(self.label)  # of the last evaluation
        self.rng = EpochRNG()
        # gp_weight and adaptive_gp: the GAN methods' fields; CADA-VAE has none.
        self.penalty = GradientPenalty(getattr(config, "gp_weight", 10.0),
                                       adaptive=getattr(config, "adaptive_gp", False))

    # ---------------------------------------------------------------- hooks

    def _architecture_for(self, data: TaskTensors) -> dict[str, int]:
        """The network sizes for this task and config (a resumed run must match them)."""
        raise NotImplementedError

    def _build(self, architecture: dict[str, int]) -> None:
        """Create the networks and optimisers, in the reference's order (their default inits
        fix the RNG stream); set `self.architecture`."""
        raise NotImplementedError

    def _stateful(self) -> dict[str, Any]:
        """The parts with a `state_dict` (networks, optimisers, `self.classifiers`), by
        checkpoint key."""
        raise NotImplementedError

    def _critic_step(self, data: TaskTensors, batch_size: int, pass_index: int = 0
                     ) -> tuple[Batch, dict[str, torch.Tensor]]:
        """One critic update on a fresh random batch; returns the batch and the detached
        terms. Observe the step's gradient deviation in `self.penalty` (`critic_loss` does)."""
        raise NotImplementedError

    def _generator_step(self, batch: Batch, pass_index: int = 0) -> dict[str, torch.Tensor]:
        """One generator update on the last critic batch; returns the detached terms."""
        raise NotImplementedError

    def _critic_phase_modules(self) -> tuple[nn.Module, ...]:
        """Trainable during the critic steps, frozen (requires_grad False) in the generator
        step. Default: the critic."""
        return (self.critic,)

    def _on_start(self, data: TaskTensors, fresh: bool) -> None:
        """After `_build` (`fresh`) or after a resume put the RNG state back."""

    def _class_semantics(self, semantics: torch.Tensor) -> torch.Tensor:
        """The method's own transform of class semantic vectors [K, A], applied to the task's
        in `_on_start` and to classes added at prediction time. Default: none."""
        return semantics

    def _end_of_epoch(self, epoch: int) -> None:
        """After the epoch's training, before its evaluation (LR decay, gradient clears)."""

    def _epoch_losses(self, losses: dict[str, float]) -> dict[str, float]:
        """The epoch's reported losses; add method counters here."""
        return losses

    def _synthesize(self, semantics: torch.Tensor, per_class: int, what: str) -> torch.Tensor:
        """`per_class` features per row of `semantics`, class by class (the references'
        `generate_syn_feature`)."""
        return synthesize_per_class(self.generator, semantics, per_class,
                                    self.architecture["noise_dim"], what)

    def _classifier_inputs(self, features: torch.Tensor) -> torch.Tensor:
        """The feature transform the final classifier reads (identity: f-CLSWGAN)."""
        return features

    def _before_classifier(self, feature_dim: int, num_classes: int) -> bool:
        """Before each final classifier: the GZSL one (after the synthesis, before the feature
        transform, as the references' `CLASSIFIER.__init__`), then the ZSL one (inside its RNG
        fork). `feature_dim` is the raw feature width, `num_classes` the classifier's K. For
        random draws the reference makes there (TF-VAEGAN and FREE build and discard a first
        `Linear(feature_dim, K)`). True: it also made the real classifier's default-init draws
        (FREE, whose reference makes them before its transform draws), which the classifier
        then skips. Default: nothing, False."""
        return False

    def _classifier_sets(self, data: TaskTensors, generated: torch.Tensor, where: str
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The classifier inputs of (training rows, generated rows, evaluation rows), after
        the GZSL `_before_classifier`. Default: `_transformed` of the generated, evaluation
        and training rows, in that order; a method whose transform draws random numbers
        overrides it to draw them in its reference's order (FREE)."""
        generated_inputs = self._transformed(generated, where)
        eval_inputs = self._transformed(data.eval_features, where)
        return self._transformed(data.features, where), generated_inputs, eval_inputs

    def _extra_state(self) -> dict[str, Any]:
        """State beyond `_stateful` (e.g. a frozen classifier, an LR)."""
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore `_extra_state`, after the `_stateful` parts."""

    def _check_config(self) -> None:
        """The shared options' ranges; methods add theirs (calling this first)."""
        check_options(self.config,
                      at_least_one=("batch_size", "critic_iterations", "syn_num",
                                    "classifier_epochs", "zsl_classifier_epochs"),
                      non_negative=("iterations_per_epoch", "classifier_batch_size"),
                      positive=("classifier_lr",))

    # ---------------------------------------------------------------- training

    def fit(self, task: GZSLTask, monitor: TrainingMonitor) -> None:
        """Train epochs `start_epoch..epochs-1`; evaluate and report after each."""
        self._check_config()
        data = task_tensors(task, self.device, self.label)
        self._start(data)
        for epoch in range(self.start_epoch, self.config.epochs):
            losses = self._train_epoch(data, epoch, monitor)
            self._end_of_epoch(epoch)
            self._hand_over(monitor, self._evaluate(data, epoch, losses))

    def _start(self, data: TaskTensors) -> None:
        """Seed and build (a fresh run), or check that the loaded checkpoint fits this task
        and put its RNG state back (a resumed run)."""
        architecture = self._architecture_for(data)
        if self.start_epoch == 0:
            seed_everything(self.seed)
            self._build_networks(architecture)
            self._on_start(data, fresh=True)
            return
        if not self.architecture:
            raise RuntimeError("start_epoch > 0 but no state was loaded")
        if architecture != self.architecture:
            raise UnseenInputError(f"resuming {self.label}: the checkpoint's networks "
                                   f"{self.architecture} do not match this task and config "
                                   f"{architecture}")
        self.rng.restore_loaded()
        self._on_start(data, fresh=False)

    def _build_networks(self, architecture: dict[str, int]) -> None:
        """`_build`, then the two `SpeedOptions` (docs/methods/fclswgan.md §9.6.1):
        `retain_freed_memory` (glibc keeps freed blocks for the process)
        and `onednn_matmul` (every Linear of the networks on oneDNN's GEMM)."""
        if self.config.retain_freed_memory:
            onednn.retain_freed_memory()
        self._build(architecture)
        if self.config.onednn_matmul:
            for part in self._stateful().values():
                if isinstance(part, nn.Module):
                    onednn.use_onednn(part)

    def _hand_over(self, monitor: TrainingMonitor, report: EpochReport) -> None:
        """Report the epoch. The monitor may draw random numbers; the next epoch must not see
        them, or a run resumed from the checkpoint written here would differ."""
        self.start_epoch = report.epoch + 1
        self.rng.report(monitor, self, report)

    def _train_epoch(self, data: TaskTensors, epoch: int, monitor: TrainingMonitor
                     ) -> dict[str, float]:
        """passes x iterations x (critic steps on fresh batches, one generator step on the
        last critic batch); the losses of the last iteration, as the references log."""
        c = self.config
        num_train = int(data.features.shape[0])
        batch_size = min(c.batch_size, num_train)
        iterations = c.iterations_per_epoch or math.ceil(num_train / batch_size)
        total = getattr(c, "passes_per_epoch", 1) * iterations
        terms: dict[str, torch.Tensor] = {}
        steps = monitor.progress(range(total), f"{self.label} epoch {epoch + 1}/{c.epochs}",
                                 total=total)
        for step in steps:
            pass_index = step // iterations
            checked: list[tuple[str, torch.Tensor]] = []
            _set_trainable(self._critic_phase_modules(), True)
            for critic_step in range(c.critic_iterations):
                batch, terms = self._critic_step(data, batch_size, pass_index)
                checked += [(f"{name} (critic step {critic_step + 1})", value)
                            for name, value in terms.items()]
            _set_trainable(self._critic_phase_modules(), False)
            self.penalty.update()
            generator_terms = self._generator_step(batch, pass_index)
            checked += list(generator_terms.items())
            self._raise_if_not_finite(checked, f"epoch {epoch + 1}, generator iteration "
                                               f"{step + 1}")
            terms.update(generator_terms)
        losses = {name: float(value) for name, value in terms.items()}
        losses["wasserstein_distance"] = losses["critic_real"] - losses["critic_fake"]
        return self._epoch_losses(losses)

    def _raise_if_not_finite(self, terms: list[tuple[str, torch.Tensor]], where: str) -> None:
        """One device sync per generator iteration; the slow path only names the culprit."""
        values = torch.stack([value.float().reshape(()) for _, value in terms])
        if bool(torch.isfinite(values).all()):
            return
        name, value = next((n, v) for n, v in terms if not bool(torch.isfinite(v)))
        raise TrainingDivergedError(f"{self.label}: '{name}' is {float(value)} at {where}; the "
                                    f"last good checkpoint is the previous epoch's")

    # ---------------------------------------------------------------- evaluation

    @torch.no_grad()
    def _evaluate(self, data: TaskTensors, epoch: int, losses: dict[str, float]) -> EpochReport:
        """Synthesise unseen features, train the GZSL softmax on [real seen ; synthetic unseen]
        and the ZSL softmax on synthetic unseen, all through `_classifier_inputs`; one
        candidate per classifier epoch. The ZSL features are the first `zsl_syn_num` per class
        of the same synthesis."""
        c = self.config
        zsl_syn_num = getattr(c, "zsl_syn_num", 0) or c.syn_num
        per_class = max(c.syn_num, zsl_syn_num) if c.zsl_classifier else c.syn_num
        num_unseen = int(data.unseen_semantics.shape[0])
        where = f"after epoch {epoch + 1}"
        generated = self._synthesize(data.unseen_semantics, per_class,
                                     f"{self.label} at the evaluation {where}")
        feature_dim = int(data.features.shape[1])
        init_drawn = self._before_classifier(feature_dim, data.num_classes)
        train_inputs, generated_inputs, eval_inputs = self._classifier_sets(data, generated,
                                                                            where)
        by_class = generated_inputs.view(num_unseen, per_class, -1)
        self.classifiers.clear()
        gzsl = self.classifiers.collect("classifier_epoch", "gzsl", train_classifier(
            torch.cat([train_inputs, by_class[:, :c.syn_num].flatten(0, 1)]),
            torch.cat([data.train_positions, data.unseen_positions.repeat_interleave(c.syn_num)]),
            eval_inputs, data.num_classes, c.classifier_epochs,
            c.classifier_batch_size or c.syn_num, c.classifier_lr, CLASSIFIER_BETAS,
            draw_default_init=not init_drawn))
        zsl = None
        if c.zsl_classifier:
            with torch.random.fork_rng(devices=[], enabled=self.zsl_rng_isolated):
                init_drawn = self._before_classifier(feature_dim, num_unseen)
                zsl = self.classifiers.collect("zsl_epoch", "zsl", train_classifier(
                    by_class[:, :zsl_syn_num].flatten(0, 1),
                    torch.arange(num_unseen, device=self.device).repeat_interleave(zsl_syn_num),
                    eval_inputs[data.eval_seen_count:], num_unseen, c.zsl_classifier_epochs,
                    c.classifier_batch_size or zsl_syn_num,
                    getattr(c, "zsl_classifier_lr", 0.0) or c.classifier_lr, CLASSIFIER_BETAS,
                    draw_default_init=not init_drawn))
        return EpochReport(epoch=epoch, gzsl_candidates=gzsl, zsl_candidates=zsl, losses=losses)

    def _transformed(self, features: torch.Tensor, where: str) -> torch.Tensor:
        """`_classifier_inputs` in no-grad blocks, checked finite (the identity: no copy)."""
        if type(self)._classifier_inputs is GenerativeMethod._classifier_inputs:
            return features
        inputs = torch.cat([self._classifier_inputs(block)
                            for block in features.split(BLOCK_ROWS)])
        if not bool(torch.isfinite(inputs).all()):
            raise TrainingDivergedError(f"{self.label}: the classifier inputs are not finite "
                                        f"{where}")
        return inputs

    # ---------------------------------------------------------------- scoring and state

    @property
    def default_candidate(self) -> str:
        """The GZSL softmax after its last epoch (the clean protocol's fixed choice)."""
        return f"classifier_epoch={self.config.classifier_epochs}"

    @torch.no_grad()
    def scores(self, task: GZSLTask, inputs: torch.Tensor, candidate: str | None = None
               ) -> torch.Tensor:
        """Log-probabilities [n, K] over `task.classes` of preprocessed features [n, D] from a
        candidate softmax of the last evaluation (default: the selected one, else
        `default_candidate`); -inf on the seen columns for a ZSL candidate."""
        features = torch.as_tensor(inputs, dtype=torch.float32, device=self.device)
        if self.architecture:
            features = torch.cat([self._classifier_inputs(block)
                                  for block in features.split(BLOCK_ROWS)])
        name = candidate or self.selected_candidate or self.default_candidate
        return self.classifiers.scores(name, task, features)

    def state_dict(self) -> dict[str, Any]:
        """Everything for an exact resume. Tensors are the live ones: save or copy at once."""
        if not self.architecture:
            raise RuntimeError(f"{self.label} has no state before fit()")
        state = {"version": self.state_version, "config": asdict(self.config),
                 "seed": self.seed, "epoch": self.start_epoch,
                 "architecture": dict(self.architecture), "rng": self.rng.state(),
                 **{key: part.state_dict() for key, part in self._stateful().items()},
                 **self._extra_state()}
        if self.penalty.adaptive:  # a fixed lambda is the config's
            state["gradient_penalty"] = self.penalty.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != self.state_version:
            raise UnseenInputError(f"{self.label} checkpoint: field 'version': expected "
                                   f"{self.state_version}, found {state.get('version')!r}")
        self._build_networks(state["architecture"])
        for key, part in self._stateful().items():
            part.load_state_dict(state[key])
        self._load_extra_state(state)
        if "gradient_penalty" in state:
            self.penalty.load_state_dict(state["gradient_penalty"])
        self.start_epoch = int(state["epoch"])
        self.rng.load(state["rng"])


def _set_trainable(modules: tuple[nn.Module, ...], trainable: bool) -> None:
    for module in modules:
        module.requires_grad_(trainable)
