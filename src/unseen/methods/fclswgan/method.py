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

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch

from unseen.methods.base import MethodConfig, option
from unseen.methods.fclswgan.losses import generator_loss
from unseen.methods.fclswgan.presets import PRESETS
from unseen.methods.fclswgan.seen_classifier import SeenClassifier, pretrain_seen_classifier
from unseen.methods.generative.classifier import adam
from unseen.methods.generative.data import TaskTensors
from unseen.methods.generative.networks import ConditionalCritic, ConditionalGenerator
from unseen.methods.generative.trainer import GenerativeMethod, SpeedOptions, check_options
from unseen.methods.generative.wgan import Batch, critic_loss, random_batch


@dataclass
class FCLSWGANConfig(SpeedOptions):
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


class FCLSWGAN(GenerativeMethod):
    """f-CLSWGAN with the reference's training loop and a once-per-epoch evaluation that yields
    one candidate per classifier epoch (the loop and evaluation: `GenerativeMethod`)."""

    name: ClassVar[str] = "fclswgan"
    label: ClassVar[str] = "f-CLSWGAN"
    inference_parts: ClassVar[tuple[str, ...]] = ("generator",)  # its classifier reads x
    config_class: ClassVar[type[MethodConfig]] = FCLSWGANConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    input_kind: ClassVar[str] = "features"
    description: ClassVar[str] = "f-CLSWGAN (CVPR 2018): WGAN-GP features + seen-class loss"
    zsl_rng_isolated: ClassVar[bool] = True  # the reference's ZSL script is a separate run

    seen_classifier: SeenClassifier | None = None  # built by `fit` (or `load_state_dict`)
    config: FCLSWGANConfig

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

    def _on_start(self, data: TaskTensors, fresh: bool) -> None:
        """A fresh run pre-trains the seen classifier after building G and D."""
        if fresh:
            c = self.config
            self.seen_classifier = pretrain_seen_classifier(
                data.features, data.labels, self.architecture["num_seen"], c.pretrain_epochs,
                c.pretrain_batch_size, c.pretrain_lr)

    def _stateful(self) -> dict[str, Any]:
        return {"generator": self.generator, "critic": self.critic,
                "optimizer_d": self.optimizer_d, "optimizer_g": self.optimizer_g,
                "classifiers": self.classifiers}

    def _extra_state(self) -> dict[str, Any]:
        """The frozen seen classifier."""
        return {"seen_classifier": asdict(self.seen_classifier)}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.seen_classifier = SeenClassifier(**state["seen_classifier"]).to(self.device)

    def _check_config(self) -> None:
        super()._check_config()
        check_options(self.config,
                      at_least_one=("generator_hidden", "critic_hidden", "pretrain_epochs",
                                    "pretrain_batch_size"),
                      non_negative=("epochs", "noise_dim", "zsl_syn_num", "zsl_classifier_lr",
                                    "cls_weight", "gp_weight"),
                      positive=("lr", "pretrain_lr"))

    # ---------------------------------------------------------------- training

    def _critic_step(self, data: TaskTensors, batch_size: int, pass_index: int = 0
                     ) -> tuple[Batch, dict[str, torch.Tensor]]:
        """One update of D on a fresh random batch. RNG order as the reference: randperm
        (batch), normal (noise), rand (GP alpha, always on the CPU generator)."""
        batch = random_batch(data.features, data.labels, data.seen_semantics, batch_size)
        noise = torch.randn(batch_size, self.architecture["noise_dim"], device=self.device)
        with torch.no_grad():  # the reference uses only the detached fake here
            fake = self.generator(noise, batch.semantics)
        alpha = torch.rand(batch_size, 1).to(self.device)
        loss, terms = critic_loss(self.critic, batch.features, fake, batch.semantics, alpha,
                                  self.penalty)
        self.optimizer_d.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_d.step()
        terms["generator_output_max"] = fake.amax()
        return batch, {name: value.detach() for name, value in terms.items()}

    def _generator_step(self, batch: Batch, pass_index: int = 0) -> dict[str, torch.Tensor]:
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
