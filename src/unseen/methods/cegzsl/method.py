"""CE-GZSL (Han et al., CVPR 2021): a conditional WGAN-GP whose features are also shaped by an
instance-level (SupCon) and a class-level (comparator) contrastive loss in an embedding space;
the final classifier is a softmax on that embedding, retrained after every GAN epoch.

The training loop follows the reference as it really runs (spec §3.4): per generator
iteration, `critic_iterations` critic steps each on a fresh random batch, updating D, E+H and F
with one Adam; then a generator step on the last critic batch with D, E+H, F frozen. With
`replicate_reference_bugs=True`, F's gradients accumulate over an epoch as in the reference;
by default they are cleared every critic step.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from itertools import chain
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unseen.data.tasks import GZSLTask
from unseen.errors import TrainingDivergedError, UnseenInputError
from unseen.methods.base import (
    EpochReport,
    EpochRNG,
    GZSLMethod,
    MethodConfig,
    TrainingMonitor,
    option,
    seed_everything,
)
from unseen.methods.cegzsl.losses import class_cross_entropy, comparator_chunk_rows, supcon_loss
from unseen.methods.cegzsl.networks import Comparator, EmbeddingNet
from unseen.methods.cegzsl.presets import PRESETS
from unseen.methods.generative.classifier import adam, train_classifier
from unseen.methods.generative.networks import ConditionalCritic, ConditionalGenerator
from unseen.methods.generative.wgan import critic_terms

_CLASSIFIER_BETAS = (0.5, 0.999)  # hard-coded in the reference's classifier call
_BLOCK_ROWS = 8192  # rows per no-grad block when embedding or synthesising many features
_STATE_VERSION = 1


@dataclass
class CEGZSLConfig(MethodConfig):
    """Hyperparameters; defaults are the reference's (`--name` in comments), presets per dataset.

    `batch_size` is clamped to the number of training rows (the reference needs B <= N).
    """

    epochs: int = option(2000, "training epochs (--nepoch; the authors stop early: see "
                                "presets)")
    batch_size: int = option(2048, "real features per critic step (--batch_size; clamped to "
                                   "the training rows)")
    noise_dim: int = option(0, "noise dimensions of G's input (--nz); 0 = the semantic "
                               "dimension")
    generator_hidden: int = option(4096, "hidden width of the generator G (--ngh)")
    critic_hidden: int = option(4096, "hidden width of the critic D (--ndh)")
    embed_dim: int = option(2048, "width of the embedding h = E(x) (--embedSize)")
    projection_dim: int = option(512, "width of the projection z = H(h) for SupCon "
                                      "(--outzSize)")
    comparator_hidden: int = option(2048, "hidden width of the class comparator F (--nhF)")
    critic_iterations: int = option(5, "critic steps per generator step (critic_iter)")
    # A fixed number makes one preset train the same number of steps on data sets of any size.
    iterations_per_epoch: int = option(0, "generator steps per epoch; 0 = ceil(N_trainval / "
                                          "batch_size), as the reference")
    lr: float = option(1e-4, "Adam learning rate of both GAN optimisers (--lr)")
    beta1: float = option(0.5, "Adam beta1 (--beta1)")
    lr_decay_epoch: int = option(100, "multiply lr by lr_decay_rate every this many epochs "
                                      "(--lr_decay_epoch)")
    lr_decay_rate: float = option(0.99, "step learning-rate decay factor (--lr_dec_rate)")
    gp_weight: float = option(10.0, "WGAN-GP gradient-penalty weight (--lambda1)")
    ins_weight: float = option(0.001, "weight of the generator's instance SupCon term "
                                      "(--ins_weight)")
    cls_weight: float = option(0.001, "weight of the generator's class-level term "
                                      "(--cls_weight)")
    ins_temperature: float = option(0.1, "temperature of the instance SupCon loss (--ins_temp)")
    cls_temperature: float = option(0.1, "temperature of the class-level loss (--cls_temp)")
    syn_num: int = option(100, "synthetic features per unseen class for the final classifier "
                               "(--syn_num)")
    classifier_lr: float = option(1e-3, "Adam learning rate of the final softmax classifier "
                                        "(--classifier_lr)")
    classifier_epochs: int = option(25, "epochs of the final classifier (one GZSL candidate "
                                        "per epoch)")
    classifier_batch_size: int = option(0, "batch of the final classifier; 0 = syn_num (the "
                                           "reference's coupling)")
    # Not in the reference (measured in docs/methods/cegzsl.md).
    classifier_cosine_scale: float = option(0.0, "> 0: the final classifier sees h "
                                                 "L2-normalised and scaled by this (cosine "
                                                 "softmax); 0 = the reference's linear softmax")
    zsl_classifier: bool = option(True, "also train the unseen-only classifier (the ZSL T1 "
                                        "candidates)")
    zsl_classifier_epochs: int = option(100, "epochs of the unseen-only classifier")
    class_loss_memory_mb: int = option(256, "memory budget (MiB) for the B x C_s x nhF "
                                            "comparator temporaries (chunking; same result)")


@dataclass
class _TaskTensors:
    """The task as tensors on the training device."""

    features: torch.Tensor  # [N_train, D]
    labels: torch.Tensor  # [N_train] seen-local labels (positions in sorted seen classes)
    train_positions: torch.Tensor  # [N_train] positions in task.classes
    seen_semantics: torch.Tensor  # [C_s, A], sorted seen classes
    unseen_semantics: torch.Tensor  # [C_u, A], sorted unseen classes
    unseen_positions: torch.Tensor  # [C_u] positions of the unseen classes in task.classes
    eval_features: torch.Tensor  # [n_eval, D], task.eval_idx rows (seen part first)
    eval_seen_count: int
    num_classes: int  # K = len(task.classes)

    @classmethod
    def from_task(cls, task: GZSLTask, device: torch.device) -> _TaskTensors:
        labels = task.benchmark.labels[task.train_idx]
        where = f"task '{task.name}' of benchmark '{task.benchmark.name}'"
        if task.train_idx.size == 0 or task.unseen_classes.size == 0:
            raise UnseenInputError(f"{where}: CE-GZSL needs training rows and unseen classes, "
                                   f"found {task.train_idx.size} rows and "
                                   f"{task.unseen_classes.size} unseen classes")
        if not np.isin(labels, task.seen_classes).all():
            raise UnseenInputError(f"{where}: training rows must belong to seen classes")

        def tensor(array: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(array), dtype=dtype, device=device)

        return cls(
            features=tensor(task.features[task.train_idx]),
            labels=tensor(np.searchsorted(task.seen_classes, labels), torch.int64),
            train_positions=tensor(task.to_task_labels(labels), torch.int64),
            seen_semantics=tensor(task.semantics[task.seen_classes]),
            unseen_semantics=tensor(task.semantics[task.unseen_classes]),
            unseen_positions=tensor(task.to_task_labels(task.unseen_classes), torch.int64),
            eval_features=tensor(task.features[task.eval_idx]),
            eval_seen_count=int(task.eval_seen_idx.size),
            num_classes=int(task.classes.size),
        )


class CEGZSL(GZSLMethod):
    """CE-GZSL with the reference's training loop, batched losses and a once-per-epoch
    evaluation that yields one GZSL candidate per classifier epoch."""

    name: ClassVar[str] = "cegzsl"
    config_class: ClassVar[type[MethodConfig]] = CEGZSLConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    input_kind: ClassVar[str] = "features"
    description: ClassVar[str] = ("CE-GZSL (CVPR 2021): WGAN-GP feature generation with "
                                  "instance- and class-level contrastive embedding")
    # The terms the reference prints each epoch; critic outputs, the generator's largest
    # output and the count of SupCon batches without positives stay in metrics.csv only.
    loss_keys: ClassVar[tuple[str, ...]] = (
        "critic_loss", "generator_loss", "wasserstein_distance", "gradient_penalty",
        "real_contrastive", "fake_contrastive", "real_class", "fake_class")

    def __init__(self, config: MethodConfig, seed: int) -> None:
        if not isinstance(config, CEGZSLConfig):
            config = CEGZSLConfig(**asdict(config))
        super().__init__(config, seed)
        self.config: CEGZSLConfig = config
        self.generator: ConditionalGenerator | None = None
        self.embedding: EmbeddingNet | None = None
        self.critic: ConditionalCritic | None = None
        self.comparator: Comparator | None = None
        self.optimizer_d: torch.optim.Adam | None = None
        self.optimizer_g: torch.optim.Adam | None = None
        self.architecture: dict[str, int] = {}
        # candidate name -> (kind "gzsl"/"zsl", weight [K, E], bias [K]) of the last evaluation
        self.classifiers: dict[str, tuple[str, torch.Tensor, torch.Tensor]] = {}
        self.rng = EpochRNG()

    # ---------------------------------------------------------------- construction

    def _build(self, architecture: dict[str, int]) -> None:
        """Create G, E+H, D, F (the reference's order: it fixes the RNG stream) and optimisers."""
        a = architecture
        self.architecture = dict(architecture)
        device = self.device
        self.generator = ConditionalGenerator(a["noise_dim"], a["semantic_dim"],
                                              a["generator_hidden"], a["feature_dim"]).to(device)
        self.embedding = EmbeddingNet(a["feature_dim"], a["embed_dim"],
                                      a["projection_dim"]).to(device)
        self.critic = ConditionalCritic(a["feature_dim"], a["semantic_dim"],
                                        a["critic_hidden"]).to(device)
        self.comparator = Comparator(a["embed_dim"], a["semantic_dim"],
                                     a["comparator_hidden"]).to(device)
        betas = (self.config.beta1, 0.999)
        self.optimizer_d = adam(chain(self.critic.parameters(), self.embedding.parameters(),
                                      self.comparator.parameters()), self.config.lr, betas)
        self.optimizer_g = adam(self.generator.parameters(), self.config.lr, betas)

    def _architecture_for(self, data: _TaskTensors) -> dict[str, int]:
        c = self.config
        semantic_dim = int(data.seen_semantics.shape[1])
        return {"feature_dim": int(data.features.shape[1]), "semantic_dim": semantic_dim,
                "noise_dim": c.noise_dim or semantic_dim, "generator_hidden": c.generator_hidden,
                "critic_hidden": c.critic_hidden, "embed_dim": c.embed_dim,
                "projection_dim": c.projection_dim, "comparator_hidden": c.comparator_hidden}

    def _check_config(self) -> None:
        c = self.config
        positive = ("batch_size", "generator_hidden", "critic_hidden", "embed_dim",
                    "projection_dim", "comparator_hidden", "critic_iterations", "lr_decay_epoch",
                    "syn_num", "classifier_epochs", "zsl_classifier_epochs",
                    "class_loss_memory_mb")
        for key in positive:
            if getattr(c, key) < 1:
                raise UnseenInputError(f"option '{key}': expected a positive integer, "
                                       f"found {getattr(c, key)}")
        for key in ("noise_dim", "classifier_batch_size", "epochs", "iterations_per_epoch",
                    "classifier_cosine_scale"):
            if getattr(c, key) < 0:
                raise UnseenInputError(f"option '{key}': expected >= 0, found {getattr(c, key)}")
        for key in ("lr", "classifier_lr", "ins_temperature", "cls_temperature"):
            if not getattr(c, key) > 0:
                raise UnseenInputError(f"option '{key}': expected > 0, found {getattr(c, key)}")

    # ---------------------------------------------------------------- training

    def fit(self, task: GZSLTask, monitor: TrainingMonitor) -> None:
        """Train epochs `start_epoch..epochs-1`; evaluate and report after each."""
        self._check_config()
        data = _TaskTensors.from_task(task, self.device)
        architecture = self._architecture_for(data)
        if self.start_epoch == 0:
            seed_everything(self.seed)
            self._build(architecture)
        else:
            if self.generator is None:
                raise RuntimeError("start_epoch > 0 but no state was loaded")
            if architecture != self.architecture:
                raise UnseenInputError(
                    f"resuming CE-GZSL: the checkpoint's networks {self.architecture} do not "
                    f"match this task and config {architecture}")
            self.rng.restore_loaded()

        c = self.config
        num_train = int(data.features.shape[0])
        batch = min(c.batch_size, num_train)
        iterations = c.iterations_per_epoch or math.ceil(num_train / batch)
        chunk_rows = comparator_chunk_rows(int(data.seen_semantics.shape[0]), c.comparator_hidden,
                                           c.class_loss_memory_mb << 20, self.device)
        for epoch in range(self.start_epoch, c.epochs):
            losses = self._train_epoch(data, epoch, batch, iterations, chunk_rows, monitor)
            if c.replicate_reference_bugs:
                self.comparator.zero_grad(set_to_none=True)  # the reference's once-per-epoch clear
            if (epoch + 1) % c.lr_decay_epoch == 0:
                for optimizer in (self.optimizer_d, self.optimizer_g):
                    for group in optimizer.param_groups:
                        group["lr"] *= c.lr_decay_rate
            report = self._evaluate(data, epoch, losses)
            self.start_epoch = epoch + 1
            self.rng.report(monitor, self, report)

    def _train_epoch(self, data: _TaskTensors, epoch: int, batch: int, iterations: int,
                     chunk_rows: int, monitor: TrainingMonitor) -> dict[str, float]:
        c = self.config
        empty_batches = torch.zeros((), device=self.device)
        terms: dict[str, torch.Tensor] = {}
        steps = monitor.progress(range(iterations), f"CE-GZSL epoch {epoch + 1}/{c.epochs}",
                                 total=iterations)
        for iteration in steps:
            checked: list[tuple[str, torch.Tensor]] = []
            _set_trainable((self.critic, self.embedding, self.comparator), True)
            for step in range(c.critic_iterations):
                x, a, y, terms = self._critic_step(data, batch, chunk_rows)
                empty_batches += terms.pop("anchors") == 0
                checked += [(f"{name} (critic step {step + 1})", value)
                            for name, value in terms.items()]
            _set_trainable((self.critic, self.embedding, self.comparator), False)
            generator_terms = self._generator_step(x, a, y, data.seen_semantics, chunk_rows)
            empty_batches += generator_terms.pop("anchors") == 0
            checked += list(generator_terms.items())
            _raise_if_not_finite(checked, epoch, iteration)
            terms.update(generator_terms)
        # As the reference logs: the values of the last iteration.
        losses = {name: float(value) for name, value in terms.items()}
        losses["wasserstein_distance"] = losses["critic_real"] - losses["critic_fake"]
        losses["supcon_batches_without_positives"] = float(empty_batches)
        return losses

    def _critic_step(self, data: _TaskTensors, batch: int, chunk_rows: int
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """One update of D, E+H and F on a fresh random batch. RNG order as the reference:
        randperm (batch), normal (noise), rand (GP alpha, always on the CPU generator)."""
        c = self.config
        device = self.device
        rows = torch.randperm(data.features.shape[0])[:batch].to(device)
        x, y = data.features[rows], data.labels[rows]
        a = data.seen_semantics[y]
        noise = torch.randn(batch, self.architecture["noise_dim"], device=device)
        with torch.no_grad():  # only the detached fake is used in this step
            fake = self.generator(noise, a)
        alpha = torch.rand(batch, 1).to(device)

        h, z = self.embedding(x)
        critic_real, critic_fake, penalty = critic_terms(self.critic, x, fake, a, alpha,
                                                         c.gp_weight)
        contrastive, anchors = supcon_loss(z, y, c.ins_temperature)
        class_loss = class_cross_entropy(self.comparator, h, data.seen_semantics, y,
                                         c.cls_temperature, chunk_rows)
        loss = critic_fake - critic_real + penalty + contrastive + class_loss
        if c.replicate_reference_bugs:  # F is not cleared: its gradient accumulates
            self.critic.zero_grad(set_to_none=True)
            self.embedding.zero_grad(set_to_none=True)
        else:
            self.optimizer_d.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_d.step()
        terms = {"critic_loss": loss, "critic_real": critic_real, "critic_fake": critic_fake,
                 "gradient_penalty": penalty, "real_contrastive": contrastive,
                 "real_class": class_loss, "generator_output_max": fake.abs().amax(),
                 "anchors": anchors}
        return x, a, y, {name: value.detach() for name, value in terms.items()}

    def _generator_step(self, x: torch.Tensor, a: torch.Tensor, y: torch.Tensor,
                        seen_semantics: torch.Tensor, chunk_rows: int) -> dict[str, torch.Tensor]:
        """One update of G on the last critic batch with new noise; D, E+H, F frozen."""
        c = self.config
        noise = torch.randn(x.shape[0], self.architecture["noise_dim"], device=self.device)
        fake = self.generator(noise, a)
        critic_fake = self.critic(fake, a).mean()
        h_fake, z_fake = self.embedding(fake)
        with torch.no_grad():
            _, z_real = self.embedding(x)
        contrastive, anchors = supcon_loss(torch.cat([z_fake, z_real]), torch.cat([y, y]),
                                           c.ins_temperature)
        class_loss = class_cross_entropy(self.comparator, h_fake, seen_semantics, y,
                                         c.cls_temperature, chunk_rows)
        loss = -critic_fake + c.ins_weight * contrastive + c.cls_weight * class_loss
        self.optimizer_g.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_g.step()
        terms = {"generator_loss": loss, "fake_contrastive": contrastive,
                 "fake_class": class_loss, "generator_output_max": fake.abs().amax(),
                 "anchors": anchors}
        return {name: value.detach() for name, value in terms.items()}

    # ---------------------------------------------------------------- evaluation

    @torch.no_grad()
    def _evaluate(self, data: _TaskTensors, epoch: int, losses: dict[str, float]) -> EpochReport:
        """Synthesise unseen features, train the softmax classifier(s) on h, score eval rows."""
        c = self.config
        syn = c.syn_num
        num_unseen = int(data.unseen_semantics.shape[0])
        noise = torch.empty(num_unseen, syn, self.architecture["noise_dim"], device=self.device)
        for class_noise in noise:  # one draw per unseen class, in sorted order (reference RNG)
            class_noise.normal_()
        synthetic_h = self._embed_synthetic(noise.view(num_unseen * syn, -1),
                                            data.unseen_semantics.repeat_interleave(syn, 0), epoch)
        train_h = self._embed(data.features)
        eval_h = self._embed(data.eval_features)
        if not (torch.isfinite(train_h).all() and torch.isfinite(eval_h).all()):
            raise TrainingDivergedError(f"CE-GZSL: the embedding E(x) is not finite after "
                                        f"epoch {epoch + 1}")
        synthetic_h, train_h, eval_h = (self._classifier_input(h)
                                        for h in (synthetic_h, train_h, eval_h))
        batch = c.classifier_batch_size or syn
        classifiers: dict[str, tuple[str, torch.Tensor, torch.Tensor]] = {}
        gzsl: dict[str, torch.Tensor] = {}
        train_labels = torch.cat([data.train_positions,
                                  data.unseen_positions.repeat_interleave(syn)])
        epochs = train_classifier(torch.cat([train_h, synthetic_h]), train_labels, eval_h,
                                  data.num_classes, c.classifier_epochs, batch, c.classifier_lr,
                                  _CLASSIFIER_BETAS)
        for k, result in enumerate(epochs, start=1):
            name = f"classifier_epoch={k}"
            gzsl[name] = result.log_probs.cpu()
            classifiers[name] = ("gzsl", result.weight.cpu(), result.bias.cpu())
        zsl: dict[str, torch.Tensor] | None = None
        if c.zsl_classifier:
            zsl = {}
            zsl_labels = torch.arange(num_unseen, device=self.device).repeat_interleave(syn)
            epochs = train_classifier(synthetic_h, zsl_labels, eval_h[data.eval_seen_count:],
                                      num_unseen, c.zsl_classifier_epochs, batch,
                                      c.classifier_lr, _CLASSIFIER_BETAS)
            for k, result in enumerate(epochs, start=1):
                name = f"zsl_epoch={k}"
                zsl[name] = result.log_probs.cpu()
                classifiers[name] = ("zsl", result.weight.cpu(), result.bias.cpu())
        self.classifiers = classifiers
        return EpochReport(epoch=epoch, gzsl_candidates=gzsl, zsl_candidates=zsl, losses=losses)

    def _embed(self, features: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.embedding.embed(block) for block in features.split(_BLOCK_ROWS)])

    def _classifier_input(self, h: torch.Tensor) -> torch.Tensor:
        """What the final classifier sees: h, or h on a sphere of radius classifier_cosine_scale."""
        scale = self.config.classifier_cosine_scale
        return h if scale == 0 else scale * F.normalize(h, dim=1)

    def _embed_synthetic(self, noise: torch.Tensor, semantics: torch.Tensor, epoch: int
                         ) -> torch.Tensor:
        blocks = []
        for noise_block, semantic_block in zip(noise.split(_BLOCK_ROWS),
                                               semantics.split(_BLOCK_ROWS), strict=True):
            fake = self.generator(noise_block, semantic_block)
            if not torch.isfinite(fake).all():
                raise TrainingDivergedError(f"CE-GZSL: generator output is not finite at the "
                                            f"evaluation after epoch {epoch + 1}")
            blocks.append(self.embedding.embed(fake))
        return torch.cat(blocks)

    # ---------------------------------------------------------------- scoring and state

    @property
    def default_candidate(self) -> str:
        """The last GZSL classifier epoch (the clean protocol's fixed choice)."""
        return f"classifier_epoch={self.config.classifier_epochs}"

    @torch.no_grad()
    def scores(self, task: GZSLTask, inputs: torch.Tensor, candidate: str | None = None
               ) -> torch.Tensor:
        """Log-probabilities [n, K] over `task.classes` from the named candidate's classifier
        (of the last evaluation; default: the selected one, else the last classifier epoch);
        ZSL candidates give -inf on the seen columns."""
        name = candidate or self.selected_candidate or self.default_candidate
        if self.embedding is None or name not in self.classifiers:
            known = ", ".join(self.classifiers) or "none (the method is not trained)"
            raise UnseenInputError(f"CE-GZSL candidate '{name}': unknown; available: {known}")
        kind, weight, bias = self.classifiers[name]
        device = self.device
        features = torch.as_tensor(inputs, dtype=torch.float32).to(device)
        h = self._classifier_input(self._embed(features))
        log_probs = torch.log_softmax(h @ weight.to(device).T + bias.to(device), dim=1).cpu()
        num_classes = int(task.classes.size)
        if kind == "gzsl":
            if weight.shape[0] != num_classes:
                raise UnseenInputError(f"CE-GZSL candidate '{name}': trained for "
                                       f"{weight.shape[0]} classes, task has {num_classes}")
            return log_probs
        positions = torch.as_tensor(task.to_task_labels(task.unseen_classes))
        if positions.numel() != weight.shape[0]:
            raise UnseenInputError(f"CE-GZSL candidate '{name}': trained for {weight.shape[0]} "
                                   f"unseen classes, task has {positions.numel()}")
        full = torch.full((log_probs.shape[0], num_classes), float("-inf"))
        full[:, positions] = log_probs
        return full

    def state_dict(self) -> dict[str, Any]:
        """Everything for an exact resume. Tensors are the live ones: save or copy at once."""
        if self.generator is None:
            raise RuntimeError("CE-GZSL has no state before fit()")
        state: dict[str, Any] = {
            "version": _STATE_VERSION, "config": asdict(self.config), "seed": self.seed,
            "epoch": self.start_epoch, "architecture": dict(self.architecture),
            "generator": self.generator.state_dict(), "embedding": self.embedding.state_dict(),
            "critic": self.critic.state_dict(), "comparator": self.comparator.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict(),
            "optimizer_g": self.optimizer_g.state_dict(),
            "lr": self.optimizer_g.param_groups[0]["lr"],
            "rng": self.rng.state(),
            "classifiers": {name: {"kind": kind, "weight": weight, "bias": bias}
                            for name, (kind, weight, bias) in self.classifiers.items()},
        }
        if self.config.replicate_reference_bugs:
            state["comparator_grads"] = [p.grad for p in self.comparator.parameters()]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != _STATE_VERSION:
            raise UnseenInputError(f"CE-GZSL checkpoint: field 'version': expected "
                                   f"{_STATE_VERSION}, found {state.get('version')!r}")
        self._build(state["architecture"])
        self.generator.load_state_dict(state["generator"])
        self.embedding.load_state_dict(state["embedding"])
        self.critic.load_state_dict(state["critic"])
        self.comparator.load_state_dict(state["comparator"])
        self.optimizer_d.load_state_dict(state["optimizer_d"])
        self.optimizer_g.load_state_dict(state["optimizer_g"])
        for optimizer in (self.optimizer_d, self.optimizer_g):
            for group in optimizer.param_groups:
                group["lr"] = state["lr"]
        for parameter, grad in zip(self.comparator.parameters(),
                                   state.get("comparator_grads") or [], strict=False):
            parameter.grad = None if grad is None else grad.clone().to(parameter.device)
        self.classifiers = {name: (entry["kind"], entry["weight"], entry["bias"])
                            for name, entry in state["classifiers"].items()}
        self.start_epoch = int(state["epoch"])
        self.rng.load(state["rng"])


def _set_trainable(modules: tuple[nn.Module, ...], trainable: bool) -> None:
    for module in modules:
        module.requires_grad_(trainable)


def _raise_if_not_finite(terms: list[tuple[str, torch.Tensor]], epoch: int,
                         iteration: int) -> None:
    """One device sync per generator iteration; the slow path only names the culprit."""
    values = torch.stack([value.float().reshape(()) for _, value in terms])
    if bool(torch.isfinite(values).all()):
        return
    name, value = next((n, v) for n, v in terms if not bool(torch.isfinite(v)))
    raise TrainingDivergedError(f"CE-GZSL: '{name}' is {float(value)} at epoch {epoch + 1}, "
                                f"generator iteration {iteration + 1}; the last good checkpoint "
                                f"is the previous epoch's")
