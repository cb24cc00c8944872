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

from dataclasses import dataclass
from itertools import chain
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from unseen.methods.base import MethodConfig, option
from unseen.methods.cegzsl.losses import class_cross_entropy, comparator_chunk_rows, supcon_loss
from unseen.methods.cegzsl.networks import Comparator, EmbeddingNet
from unseen.methods.cegzsl.presets import PRESETS
from unseen.methods.generative.classifier import adam
from unseen.methods.generative.data import TaskTensors
from unseen.methods.generative.networks import ConditionalCritic, ConditionalGenerator
from unseen.methods.generative.trainer import GenerativeMethod, SpeedOptions, check_options
from unseen.methods.generative.wgan import Batch, critic_loss, random_batch


@dataclass
class CEGZSLConfig(SpeedOptions):
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


class CEGZSL(GenerativeMethod):
    """CE-GZSL with the reference's training loop, batched losses and a once-per-epoch
    evaluation that yields one GZSL candidate per classifier epoch (the loop and evaluation:
    `GenerativeMethod`)."""

    name: ClassVar[str] = "cegzsl"
    label: ClassVar[str] = "CE-GZSL"
    inference_parts: ClassVar[tuple[str, ...]] = ("generator", "embedding")  # G, E
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

    # Built by `fit` (or `load_state_dict`); None before.
    embedding: EmbeddingNet | None = None
    comparator: Comparator | None = None
    config: CEGZSLConfig

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

    def _architecture_for(self, data: TaskTensors) -> dict[str, int]:
        c = self.config
        semantic_dim = int(data.seen_semantics.shape[1])
        return {"feature_dim": int(data.features.shape[1]), "semantic_dim": semantic_dim,
                "noise_dim": c.noise_dim or semantic_dim, "generator_hidden": c.generator_hidden,
                "critic_hidden": c.critic_hidden, "embed_dim": c.embed_dim,
                "projection_dim": c.projection_dim, "comparator_hidden": c.comparator_hidden}

    def _on_start(self, data: TaskTensors, fresh: bool) -> None:
        c = self.config
        self._chunk_rows = comparator_chunk_rows(int(data.seen_semantics.shape[0]),
                                                 c.comparator_hidden,
                                                 c.class_loss_memory_mb << 20, self.device)
        self._empty_batches = torch.zeros((), device=self.device)
        self._seen_semantics = data.seen_semantics  # the class-level loss's classes

    def _stateful(self) -> dict[str, Any]:
        return {"generator": self.generator, "embedding": self.embedding,
                "critic": self.critic, "comparator": self.comparator,
                "optimizer_d": self.optimizer_d, "optimizer_g": self.optimizer_g,
                "classifiers": self.classifiers}

    def _extra_state(self) -> dict[str, Any]:
        """The decayed learning rate and, in bug mode, F's accumulated gradient."""
        state: dict[str, Any] = {"lr": self.optimizer_g.param_groups[0]["lr"]}
        if self.config.replicate_reference_bugs:
            state["comparator_grads"] = [p.grad for p in self.comparator.parameters()]
        return state

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        for optimizer in (self.optimizer_d, self.optimizer_g):
            for group in optimizer.param_groups:
                group["lr"] = state["lr"]
        for parameter, grad in zip(self.comparator.parameters(),
                                   state.get("comparator_grads") or [], strict=False):
            parameter.grad = None if grad is None else grad.clone().to(parameter.device)

    def _check_config(self) -> None:
        super()._check_config()
        check_options(self.config,
                      at_least_one=("generator_hidden", "critic_hidden", "embed_dim",
                                    "projection_dim", "comparator_hidden", "lr_decay_epoch",
                                    "class_loss_memory_mb"),
                      non_negative=("noise_dim", "epochs", "classifier_cosine_scale"),
                      positive=("lr", "ins_temperature", "cls_temperature"))

    # ---------------------------------------------------------------- training

    def _critic_phase_modules(self) -> tuple[nn.Module, ...]:
        return (self.critic, self.embedding, self.comparator)

    def _critic_step(self, data: TaskTensors, batch_size: int, pass_index: int = 0
                     ) -> tuple[Batch, dict[str, torch.Tensor]]:
        """One update of D, E+H and F on a fresh random batch. RNG order as the reference:
        randperm (batch), normal (noise), rand (GP alpha, always on the CPU generator)."""
        c = self.config
        batch = random_batch(data.features, data.labels, data.seen_semantics, batch_size)
        x, a, y = batch.features, batch.semantics, batch.labels
        noise = torch.randn(batch_size, self.architecture["noise_dim"], device=self.device)
        with torch.no_grad():  # only the detached fake is used in this step
            fake = self.generator(noise, a)
        alpha = torch.rand(batch_size, 1).to(self.device)

        h, z = self.embedding(x)
        loss, terms = critic_loss(self.critic, x, fake, a, alpha, self.penalty)
        contrastive, anchors = supcon_loss(z, y, c.ins_temperature)
        class_loss = class_cross_entropy(self.comparator, h, data.seen_semantics, y,
                                         c.cls_temperature, self._chunk_rows)
        loss = loss + contrastive + class_loss
        if c.replicate_reference_bugs:  # F is not cleared: its gradient accumulates
            self.critic.zero_grad(set_to_none=True)
            self.embedding.zero_grad(set_to_none=True)
        else:
            self.optimizer_d.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_d.step()
        self._empty_batches += anchors == 0
        terms.update(critic_loss=loss, real_contrastive=contrastive, real_class=class_loss,
                     generator_output_max=fake.abs().amax())
        return batch, {name: value.detach() for name, value in terms.items()}

    def _generator_step(self, batch: Batch, pass_index: int = 0) -> dict[str, torch.Tensor]:
        """One update of G on the last critic batch with new noise; D, E+H, F frozen."""
        c = self.config
        x, a, y = batch.features, batch.semantics, batch.labels
        noise = torch.randn(x.shape[0], self.architecture["noise_dim"], device=self.device)
        fake = self.generator(noise, a)
        critic_fake = self.critic(fake, a).mean()
        h_fake, z_fake = self.embedding(fake)
        with torch.no_grad():
            _, z_real = self.embedding(x)
        contrastive, anchors = supcon_loss(torch.cat([z_fake, z_real]), torch.cat([y, y]),
                                           c.ins_temperature)
        class_loss = class_cross_entropy(self.comparator, h_fake, self._seen_semantics, y,
                                         c.cls_temperature, self._chunk_rows)
        loss = -critic_fake + c.ins_weight * contrastive + c.cls_weight * class_loss
        self.optimizer_g.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_g.step()
        self._empty_batches += anchors == 0
        terms = {"generator_loss": loss, "fake_contrastive": contrastive,
                 "fake_class": class_loss, "generator_output_max": fake.abs().amax()}
        return {name: value.detach() for name, value in terms.items()}

    def _epoch_losses(self, losses: dict[str, float]) -> dict[str, float]:
        losses["supcon_batches_without_positives"] = float(self._empty_batches)
        self._empty_batches = torch.zeros((), device=self.device)
        return losses

    def _end_of_epoch(self, epoch: int) -> None:
        """The reference's once-per-epoch F-gradient clear (bug mode) and its LR decay."""
        c = self.config
        if c.replicate_reference_bugs:
            self.comparator.zero_grad(set_to_none=True)
        if (epoch + 1) % c.lr_decay_epoch == 0:
            for optimizer in (self.optimizer_d, self.optimizer_g):
                for group in optimizer.param_groups:
                    group["lr"] *= c.lr_decay_rate

    # ---------------------------------------------------------------- evaluation

    def _classifier_inputs(self, features: torch.Tensor) -> torch.Tensor:
        """What the final classifier sees: h = E(x), or h on a sphere of radius
        classifier_cosine_scale."""
        h = self.embedding.embed(features)
        scale = self.config.classifier_cosine_scale
        return h if scale == 0 else scale * F.normalize(h, dim=1)
