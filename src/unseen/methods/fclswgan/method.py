"""f-CLSWGAN (Xian, Lorenz, Schiele, Akata, CVPR 2018): a conditional WGAN-GP that generates
features of unseen classes, its generator also trained to make them classifiable by a frozen
softmax pre-trained on the seen classes; the final classifier is a softmax on real seen and
generated unseen features, retrained after every GAN epoch.

Faithful to the authors' PyTorch code as it runs (docs/methods/fclswgan.md): G and D built in
that order, then the seen-class softmax trained (50 epochs, batch 100, lr 1e-3) and frozen; per
generator iteration `critic_iterations` critic steps on fresh random batches, then one
generator step on the last critic batch with new noise; no learning-rate decay. Every epoch
yields one GZSL candidate per classifier epoch and, with `zsl_classifier`, one ZSL candidate per
epoch of the unseen-only classifier (the reference's ZSL script), for the runner to select.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch

from unseen.data.tasks import GZSLTask
from unseen.errors import TrainingDivergedError, UnseenInputError
from unseen.methods import base
from unseen.methods.base import EpochReport, GZSLMethod, MethodConfig, TrainingMonitor, option
from unseen.methods.cegzsl.method import _TaskTensors as TaskTensors
from unseen.methods.fclswgan.losses import generator_loss
from unseen.methods.fclswgan.presets import PRESETS
from unseen.methods.fclswgan.seen_classifier import SeenClassifier, pretrain_seen_classifier
from unseen.methods.generative.candidates import CandidateClassifiers
from unseen.methods.generative.classifier import adam, train_classifier
from unseen.methods.generative.networks import ConditionalCritic, ConditionalGenerator
from unseen.methods.generative.synthesis import synthesize_per_class
from unseen.methods.generative.wgan import Batch, critic_loss, random_batch

_CLASSIFIER_BETAS = (0.5, 0.999)  # hard-coded in the reference's classifier2 calls
_STATE_VERSION = 1


@dataclass
class FCLSWGANConfig(MethodConfig):
    """Hyperparameters (`--name` = the reference's flag). Defaults: the values every official
    script shares; where the scripts differ, the code's default. Presets hold each script.

    `batch_size` is clamped to the number of training rows (the reference needs B <= N).
    """

    # The reference's flag in brackets; code defaults that the scripts override are noted.
    epochs: int = option(50, "training epochs [--nepoch; code default 2000, scripts 30-97]")
    batch_size: int = option(64, "real features per critic step [--batch_size]")
    noise_dim: int = option(0, "noise dimension [--nz]; 0: the semantic dimension, as every "
                               "script passes")
    generator_hidden: int = option(4096, "generator hidden width [--ngh]")
    critic_hidden: int = option(4096, "critic hidden width [--ndh; code default 1024, every "
                                      "script 4096]")
    critic_iterations: int = option(5, "critic steps per generator step [--critic_iter]")
    iterations_per_epoch: int = option(0, "generator steps per epoch; 0: ceil(N_train / "
                                          "batch_size), as the reference")
    lr: float = option(1e-4, "Adam learning rate of G and D [--lr]")
    beta1: float = option(0.5, "Adam beta1 of G and D [--beta1]")
    gp_weight: float = option(10.0, "gradient-penalty weight lambda [--lambda1]")
    cls_weight: float = option(0.01, "weight of the frozen seen-classifier loss on G "
                                     "[--cls_weight; code default 1, scripts 0.01 or 0.1]")
    pretrain_epochs: int = option(50, "epochs of the seen-class softmax (hard-coded, "
                                      "clswgan.py:177)")
    pretrain_batch_size: int = option(100, "batch size of the seen-class softmax (hard-coded)")
    pretrain_lr: float = option(1e-3, "learning rate of the seen-class softmax (hard-coded)")
    syn_num: int = option(100, "generated features per unseen class [--syn_num of the GZSL "
                               "script]")
    classifier_lr: float = option(1e-3, "final classifier learning rate [--classifier_lr]")
    classifier_epochs: int = option(25, "final classifier epochs, one candidate each "
                                        "(hard-coded, clswgan.py:257)")
    classifier_batch_size: int = option(0, "final classifier batch; 0: syn_num (the "
                                           "reference's coupling)")
    zsl_classifier: bool = option(True, "also train the unseen-only classifier (the T1 "
                                        "candidates)")
    # The ZSL features are the first zsl_syn_num generated per class at the same evaluation.
    zsl_syn_num: int = option(0, "generated features per class for the ZSL classifier [the ZSL "
                                 "script's --syn_num]; 0: syn_num")
    zsl_classifier_lr: float = option(0.0, "ZSL classifier learning rate; 0: classifier_lr")
    zsl_classifier_epochs: int = option(25, "ZSL classifier epochs (hard-coded, "
                                            "clswgan.py:263)")


class FCLSWGAN(GZSLMethod):
    """f-CLSWGAN with the reference's training loop and a once-per-epoch evaluation that yields
    one candidate per classifier epoch."""

    name: ClassVar[str] = "fclswgan"
    config_class: ClassVar[type[MethodConfig]] = FCLSWGANConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    input_kind: ClassVar[str] = "features"
    description: ClassVar[str] = "f-CLSWGAN (CVPR 2018): WGAN-GP features + seen-class loss"

    # Built by `fit` (or `load_state_dict`); None before.
    generator: ConditionalGenerator | None = None
    critic: ConditionalCritic | None = None
    seen_classifier: SeenClassifier | None = None
    optimizer_d: torch.optim.Adam | None = None
    optimizer_g: torch.optim.Adam | None = None

    def __init__(self, config: MethodConfig, seed: int) -> None:
        super().__init__(config if isinstance(config, FCLSWGANConfig)
                         else FCLSWGANConfig(**asdict(config)), seed)
        self.config: FCLSWGANConfig
        self.architecture: dict[str, int] = {}
        self.classifiers = CandidateClassifiers("f-CLSWGAN")  # of the last evaluation
        self.rng = base.EpochRNG()

    # ---------------------------------------------------------------- construction

    def _build(self, architecture: dict[str, int]) -> None:
        """G, then D (the reference's order: their default inits fix the RNG stream), and the
        two Adam optimisers."""
        a = self.architecture = dict(architecture)
        self.generator = ConditionalGenerator(a["noise_dim"], a["semantic_dim"],
                                              a["generator_hidden"], a["feature_dim"]
                                              ).to(self.device)
        self.critic = ConditionalCritic(a["feature_dim"], a["semantic_dim"],
                                        a["critic_hidden"]).to(self.device)
        betas = (self.config.beta1, 0.999)
        self.optimizer_d = adam(self.critic.parameters(), self.config.lr, betas)
        self.optimizer_g = adam(self.generator.parameters(), self.config.lr, betas)

    def _architecture_for(self, data: TaskTensors) -> dict[str, int]:
        num_seen, semantic_dim = data.seen_semantics.shape
        return dict(feature_dim=int(data.features.shape[1]), semantic_dim=int(semantic_dim),
                    noise_dim=self.config.noise_dim or int(semantic_dim),
                    generator_hidden=self.config.generator_hidden,
                    critic_hidden=self.config.critic_hidden, num_seen=int(num_seen))

    def _stateful(self) -> dict[str, Any]:
        """The parts with a `state_dict`, by checkpoint key."""
        return {"generator": self.generator, "critic": self.critic,
                "optimizer_d": self.optimizer_d, "optimizer_g": self.optimizer_g,
                "classifiers": self.classifiers}

    def _check_config(self) -> None:
        c = self.config
        at_least = {1: ("batch_size", "generator_hidden", "critic_hidden", "critic_iterations",
                        "pretrain_epochs", "pretrain_batch_size", "syn_num", "classifier_epochs",
                        "zsl_classifier_epochs"),
                    0: ("epochs", "noise_dim", "iterations_per_epoch", "classifier_batch_size",
                        "zsl_syn_num", "zsl_classifier_lr", "cls_weight", "gp_weight")}
        for minimum, keys in at_least.items():
            for key in keys:
                if getattr(c, key) < minimum:
                    raise UnseenInputError(f"option '{key}': expected >= {minimum}, "
                                           f"found {getattr(c, key)}")
        for key in ("lr", "pretrain_lr", "classifier_lr"):
            if not getattr(c, key) > 0:
                raise UnseenInputError(f"option '{key}': expected > 0, found {getattr(c, key)}")

    # ---------------------------------------------------------------- training

    def fit(self, task: GZSLTask, monitor: TrainingMonitor) -> None:
        """Train epochs `start_epoch..epochs-1`; evaluate and report after each."""
        self._check_config()
        data = _task_tensors(task, self.device)
        self._start(data)
        c = self.config
        num_train = int(data.features.shape[0])
        batch_size = min(c.batch_size, num_train)
        iterations = c.iterations_per_epoch or math.ceil(num_train / batch_size)
        for epoch in range(self.start_epoch, c.epochs):
            losses = self._train_epoch(data, epoch, batch_size, iterations, monitor)
            self._hand_over(monitor, self._evaluate(data, epoch, losses))

    def _start(self, data: TaskTensors) -> None:
        """Seed, build and pre-train the seen classifier (a fresh run), or check that the
        loaded checkpoint fits this task and put its RNG state back (a resumed run)."""
        architecture = self._architecture_for(data)
        if self.start_epoch == 0:
            base.seed_everything(self.seed)
            self._build(architecture)
            c = self.config
            self.seen_classifier = pretrain_seen_classifier(
                data.features, data.labels, architecture["num_seen"], c.pretrain_epochs,
                c.pretrain_batch_size, c.pretrain_lr)
            return
        if self.generator is None:
            raise RuntimeError("start_epoch > 0 but no state was loaded")
        if architecture != self.architecture:
            raise UnseenInputError(f"resuming f-CLSWGAN: the checkpoint's networks "
                                   f"{self.architecture} do not match this task and config "
                                   f"{architecture}")
        self.rng.restore_loaded()

    def _hand_over(self, monitor: TrainingMonitor, report: EpochReport) -> None:
        """Report the epoch. The monitor may draw random numbers; the next epoch must not see
        them, or a run resumed from the checkpoint written here would differ."""
        self.start_epoch = report.epoch + 1
        self.rng.report(monitor, self, report)

    def _train_epoch(self, data: TaskTensors, epoch: int, batch_size: int, iterations: int,
                     monitor: TrainingMonitor) -> dict[str, float]:
        c = self.config
        terms: dict[str, torch.Tensor] = {}
        steps = monitor.progress(range(iterations), f"f-CLSWGAN epoch {epoch + 1}/{c.epochs}",
                                 total=iterations)
        for iteration in steps:
            self.critic.requires_grad_(True)
            for _ in range(c.critic_iterations):
                batch, terms = self._critic_step(data, batch_size)
            self.critic.requires_grad_(False)
            terms.update(self._generator_step(batch))
            _check_finite(terms, f"epoch {epoch + 1}, generator iteration {iteration + 1}")
        # As the reference logs: the values of the last iteration.
        losses = {name: float(value) for name, value in terms.items()}
        losses["wasserstein_distance"] = losses["critic_real"] - losses["critic_fake"]
        return losses

    def _critic_step(self, data: TaskTensors, batch_size: int
                     ) -> tuple[Batch, dict[str, torch.Tensor]]:
        """One update of D on a fresh random batch. RNG order as the reference: randperm
        (batch), normal (noise), rand (GP alpha, always on the CPU generator)."""
        batch = random_batch(data.features, data.labels, data.seen_semantics, batch_size)
        noise = torch.randn(batch_size, self.architecture["noise_dim"], device=self.device)
        with torch.no_grad():  # the reference uses only the detached fake here
            fake = self.generator(noise, batch.semantics)
        alpha = torch.rand(batch_size, 1).to(self.device)
        loss, terms = critic_loss(self.critic, batch.features, fake, batch.semantics, alpha,
                                  self.config.gp_weight)
        self.optimizer_d.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_d.step()
        terms["generator_output_max"] = fake.amax()
        return batch, {name: value.detach() for name, value in terms.items()}

    def _generator_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        """One update of G on the last critic batch with new noise; D is frozen (no gradient)
        and the seen classifier has no parameters."""
        noise = torch.randn(batch.features.shape[0], self.architecture["noise_dim"],
                            device=self.device)
        fake = self.generator(noise, batch.semantics)
        loss, terms = generator_loss(self.critic, self.seen_classifier, fake, batch.semantics,
                                     batch.labels, self.config.cls_weight)
        self.optimizer_g.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_g.step()
        return {name: value.detach() for name, value in terms.items()}

    # ---------------------------------------------------------------- evaluation

    @torch.no_grad()
    def _evaluate(self, data: TaskTensors, epoch: int, losses: dict[str, float]) -> EpochReport:
        """Generate unseen features, train the GZSL softmax on [real seen ; generated unseen]
        and the ZSL softmax on generated unseen features; one candidate per classifier epoch."""
        c = self.config
        zsl_syn_num = c.zsl_syn_num or c.syn_num
        per_class = max(c.syn_num, zsl_syn_num) if c.zsl_classifier else c.syn_num
        num_unseen = int(data.unseen_semantics.shape[0])
        generated = synthesize_per_class(
            self.generator, data.unseen_semantics, per_class, self.architecture["noise_dim"],
            f"f-CLSWGAN at the evaluation after epoch {epoch + 1}")
        by_class = generated.view(num_unseen, per_class, -1)
        self.classifiers.clear()
        gzsl = self.classifiers.collect("classifier_epoch", "gzsl", train_classifier(
            torch.cat([data.features, by_class[:, :c.syn_num].flatten(0, 1)]),
            torch.cat([data.train_positions, data.unseen_positions.repeat_interleave(c.syn_num)]),
            data.eval_features, data.num_classes, c.classifier_epochs,
            c.classifier_batch_size or c.syn_num, c.classifier_lr, _CLASSIFIER_BETAS))
        zsl = None
        if c.zsl_classifier:
            # A separate script in the reference: its random draws must not shift the GAN's.
            with torch.random.fork_rng(devices=[]):
                zsl = self.classifiers.collect("zsl_epoch", "zsl", train_classifier(
                    by_class[:, :zsl_syn_num].flatten(0, 1),
                    torch.arange(num_unseen, device=self.device).repeat_interleave(zsl_syn_num),
                    data.eval_features[data.eval_seen_count:], num_unseen,
                    c.zsl_classifier_epochs, c.classifier_batch_size or zsl_syn_num,
                    c.zsl_classifier_lr or c.classifier_lr, _CLASSIFIER_BETAS))
        return EpochReport(epoch=epoch, gzsl_candidates=gzsl, zsl_candidates=zsl, losses=losses)

    # ---------------------------------------------------------------- scoring and state

    @torch.no_grad()
    def scores(self, task: GZSLTask, inputs: torch.Tensor, candidate: str | None = None
               ) -> torch.Tensor:
        """A candidate softmax of the last evaluation (default: `default_candidate`) applied
        to preprocessed features [n, D]: log-probabilities [n, K] over `task.classes`, -inf on
        the seen columns for a ZSL candidate."""
        features = torch.as_tensor(inputs, dtype=torch.float32, device=self.device)
        return self.classifiers.scores(candidate or self.default_candidate, task, features)

    @property
    def default_candidate(self) -> str:
        """What `scores` uses unless told: the GZSL softmax after its last epoch (the one
        candidate the clean protocol reports)."""
        return f"classifier_epoch={self.config.classifier_epochs}"

    def state_dict(self) -> dict[str, Any]:
        """Everything for an exact resume, the frozen seen classifier included. Tensors are the
        live ones: save or copy at once."""
        if self.generator is None:
            raise RuntimeError("f-CLSWGAN has no state before fit()")
        return {"version": _STATE_VERSION, "config": asdict(self.config), "seed": self.seed,
                "epoch": self.start_epoch, "architecture": dict(self.architecture),
                "seen_classifier": asdict(self.seen_classifier),
                "rng": self.rng.state(),
                **{key: part.state_dict() for key, part in self._stateful().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != _STATE_VERSION:
            raise UnseenInputError(f"f-CLSWGAN checkpoint: field 'version': expected "
                                   f"{_STATE_VERSION}, found {state.get('version')!r}")
        self._build(state["architecture"])
        for key, part in self._stateful().items():
            part.load_state_dict(state[key])
        self.seen_classifier = SeenClassifier(**state["seen_classifier"]).to(self.device)
        self.start_epoch = int(state["epoch"])
        self.rng.load(state["rng"])


def _task_tensors(task: GZSLTask, device: torch.device) -> TaskTensors:
    if task.train_idx.size == 0 or task.unseen_classes.size == 0:
        raise UnseenInputError(f"task '{task.name}' of benchmark '{task.benchmark.name}': "
                               f"f-CLSWGAN needs training rows and unseen classes, found "
                               f"{task.train_idx.size} rows and {task.unseen_classes.size} "
                               f"unseen classes")
    return TaskTensors.from_task(task, device)


def _check_finite(terms: dict[str, torch.Tensor], where: str) -> None:
    """One device sync per generator iteration; names the first non-finite term."""
    values = torch.stack([value.float().reshape(()) for value in terms.values()])
    bad = (~torch.isfinite(values)).nonzero()
    if bad.numel():
        name = list(terms)[int(bad[0, 0])]
        raise TrainingDivergedError(f"f-CLSWGAN: '{name}' is {float(terms[name])} at {where}; "
                                    f"the last good checkpoint is the previous epoch's")
