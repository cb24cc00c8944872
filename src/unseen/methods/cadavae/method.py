"""CADA-VAE (Schönfeld, Ebrahimi, Sinha, Darrell, Akata, CVPR 2019): a VAE per modality
(image features, class attributes) trained to reconstruct, cross-reconstruct and align their
latent Gaussians; a linear softmax on 64-d latents (noisy codes of real seen images and of
unseen class attributes) then classifies test images by their image-encoder means.

Faithful to the authors' code (docs/methods/cadavae.md): one Adam (amsgrad) over the four
nets, ceil(N / 50) steps per epoch on independent randperm batches, summed L1 / KL / W2 terms
with per-epoch warm-ups; the latent classifier in the reference's form (`reference_classifier`:
xavier init, a shuffling drop_last DataLoader per epoch). The reference evaluates once, after
the last epoch; so does this class by default (`evaluate_every`), reporting before that a
constant `uniform` candidate (every class equally likely: H = 0 whatever the rows, so the
runner never selects it over an evaluated epoch). The evaluated epoch's candidates are the
final classifier after its last epoch (`classifier_candidates=last`, the number the reference
prints) or after each of its epochs (`all`, for choosing the count on validation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from unseen.errors import TrainingDivergedError, UnseenInputError
from unseen.methods.base import EpochReport, MethodConfig, TrainingMonitor, option
from unseen.methods.cadavae.latents import first_rows_per_class, means, noisy_latents
from unseen.methods.cadavae.losses import WarmUp, vae_loss
from unseen.methods.cadavae.networks import AlignedVAEs
from unseen.methods.cadavae.presets import PRESETS
from unseen.methods.generative.classifier import Batching, train_classifier
from unseen.methods.generative.data import TaskTensors
from unseen.methods.generative.networks import InitScheme, LinearLogSoftmax
from unseen.methods.generative.trainer import (
    CLASSIFIER_BETAS,
    GenerativeMethod,
    SpeedOptions,
    check_options,
)

_UNIFORM = "uniform"


@dataclass
class CADAVAEConfig(SpeedOptions):
    """Hyperparameters, named after the reference's `single_experiment.py` entries; every data
    set shares them except `classifier_epochs` (the presets).

    `replicate_reference_bugs` (default TRUE here, unlike the other methods) samples
    z = mu + exp(logvar) * eps with one eps per row shared by all latent dimensions, as the
    code does and as the published numbers were made; `false` uses the standard
    mu + exp(logvar / 2) * eps, eps ~ N(0, I), consistent with the KL and alignment terms,
    which measured worse (semi-real APY, docs/methods/cadavae.md, Implementation).
    """

    epochs: int = option(100, "VAE training epochs ['epochs']")
    replicate_reference_bugs: bool = option(
        True, "sample z = mu + exp(logvar) * eps, one eps per row (the code); false: "
              "mu + exp(logvar / 2) * eps, eps ~ N(0, I)")
    batch_size: int = option(50, "rows per VAE step ['batch_size']; steps per epoch: "
                                 "ceil(N_train / batch_size)")
    latent_size: int = option(64, "latent dimension ['latent_size']")
    image_encoder_hidden: int = option(1560, "image encoder hidden width "
                                             "[hidden_size_rule resnet_features[0]]")
    image_decoder_hidden: int = option(1660, "image decoder hidden width "
                                             "[hidden_size_rule resnet_features[-1]]")
    attribute_encoder_hidden: int = option(1450, "attribute encoder hidden width "
                                                 "[hidden_size_rule attributes[0]]")
    attribute_decoder_hidden: int = option(665, "attribute decoder hidden width "
                                                "[hidden_size_rule attributes[-1]]")
    lr: float = option(1.5e-4, "Adam (amsgrad, betas 0.9/0.999) learning rate of the VAEs "
                               "['lr_gen_model']")
    kl_factor: float = option(0.25, "KL weight beta after warm-up [warmup beta factor]")
    kl_start: int = option(0, "epoch where beta's linear warm-up starts")
    kl_end: int = option(93, "epoch where beta reaches kl_factor")
    cross_reconstruction_factor: float = option(2.37, "cross-reconstruction weight gamma after "
                                                      "warm-up")
    cross_reconstruction_start: int = option(21, "epoch where gamma's warm-up starts")
    cross_reconstruction_end: int = option(75, "epoch where gamma reaches its factor")
    alignment_factor: float = option(8.13, "distribution-alignment weight delta after warm-up")
    alignment_start: int = option(6, "epoch where delta's warm-up starts")
    alignment_end: int = option(22, "epoch where delta reaches its factor")
    seen_latents_per_class: int = option(200, "classifier latents per seen class, from its "
                                              "first training images (tiled) [img_seen]")
    unseen_latents_per_class: int = option(400, "classifier latents per unseen class, from "
                                                "its attributes [att_unseen]")
    classifier_epochs: int = option(23, "latent classifier epochs [cls_train_steps; the "
                                        "reference has no default: CUB's GZSL value]")
    classifier_lr: float = option(1e-3, "latent classifier Adam learning rate ['lr_cls']")
    classifier_batch_size: int = option(32, "latent classifier batch size "
                                            "[classifier_batch_size]")
    reference_classifier: bool = option(
        True, "the classifier stage as the reference's (vaemodel.py:300-306, "
              "final_classifier.py:153-176): Linear built before the latents are drawn, "
              "xavier_uniform gain 0.5 / zero bias (models.py:6-11), each epoch a fresh "
              "DataLoader(shuffle=True, drop_last=True), floor(n / batch) batches; false: "
              "the shared classifier's N(0, 0.02^2) init, ceil(n / batch) carry-over batches")
    classifier_candidates: str = option("last", "last: only the classifier after its last "
                                                "epoch (what the reference reports); all: one "
                                                "candidate per classifier epoch")
    evaluate_every: int = option(0, "0: train the classifier only after the last VAE epoch "
                                    "(the reference); N: also every N epochs")
    fused_adam: bool = option(False, "the VAEs' Adam as one fused kernel: faster, last-bit "
                                     "float differences; false: the for-each Adam, "
                                     "bit-identical to the reference's update")


class CADAVAE(GenerativeMethod):
    """CADA-VAE with the reference's training loop and latent-space classifier; the start,
    report, scoring and state are `GenerativeMethod`'s, the epoch and the classifier stage its
    own."""

    name: ClassVar[str] = "cadavae"
    label: ClassVar[str] = "CADA-VAE"
    # test latents from the image encoder, added classes' latents from the attribute encoder
    inference_parts: ClassVar[tuple[str, ...]] = ("vaes.image_encoder",
                                                  "vaes.attribute_encoder")
    config_class: ClassVar[type[MethodConfig]] = CADAVAEConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    input_kind: ClassVar[str] = "features"
    description: ClassVar[str] = "CADA-VAE (CVPR 2019): cross-aligned VAEs, latent classifier"
    loss_keys: ClassVar[tuple[str, ...] | None] = (
        "loss", "reconstruction", "cross_reconstruction", "kl", "distribution_alignment")

    vaes: AlignedVAEs | None = None
    optimizer: torch.optim.Adam | None = None
    config: CADAVAEConfig

    # ---------------------------------------------------------------- construction

    def _build(self, architecture: dict[str, int]) -> None:
        """The VAEs and their Adam; the trainer's `_build_networks` applies the speed options."""
        a = self.architecture = dict(architecture)
        self.vaes = AlignedVAEs(a["feature_dim"], a["attribute_dim"], a["latent_size"],
                                a["image_encoder_hidden"], a["image_decoder_hidden"],
                                a["attribute_encoder_hidden"], a["attribute_decoder_hidden"]
                                ).to(self.device)
        # for-each and the default per-tensor loop give the same bits; for-each is faster
        fused = {"fused": True} if self.config.fused_adam else {"foreach": True}
        self.optimizer = torch.optim.Adam(self.vaes.parameters(), lr=self.config.lr,
                                          betas=(0.9, 0.999), eps=1e-8, amsgrad=True, **fused)

    def _architecture_for(self, data: TaskTensors) -> dict[str, int]:
        c = self.config
        return dict(feature_dim=int(data.features.shape[1]),
                    attribute_dim=int(data.seen_semantics.shape[1]),
                    latent_size=c.latent_size, image_encoder_hidden=c.image_encoder_hidden,
                    image_decoder_hidden=c.image_decoder_hidden,
                    attribute_encoder_hidden=c.attribute_encoder_hidden,
                    attribute_decoder_hidden=c.attribute_decoder_hidden)

    def _stateful(self) -> dict[str, Any]:
        return {"vaes": self.vaes, "optimizer": self.optimizer, "classifiers": self.classifiers}

    def _check_config(self) -> None:
        """CADA-VAE's own options (none of the GAN loop's)."""
        c = self.config
        check_options(c, at_least_one=("batch_size", "latent_size", "image_encoder_hidden",
                                       "image_decoder_hidden", "attribute_encoder_hidden",
                                       "attribute_decoder_hidden", "seen_latents_per_class",
                                       "unseen_latents_per_class", "classifier_epochs",
                                       "classifier_batch_size"),
                      non_negative=("kl_factor", "cross_reconstruction_factor",
                                    "alignment_factor", "evaluate_every"),
                      positive=("lr", "classifier_lr"))
        for name in ("kl", "cross_reconstruction", "alignment"):
            start, end = getattr(c, f"{name}_start"), getattr(c, f"{name}_end")
            if end <= start:
                raise UnseenInputError(f"option '{name}_end': expected > {name}_start "
                                       f"({start}), found {end}")
        if c.classifier_candidates not in ("last", "all"):
            raise UnseenInputError(f"option 'classifier_candidates': expected last or all, "
                                   f"found {c.classifier_candidates!r}")

    def warm_ups(self) -> dict[str, WarmUp]:
        """beta (KL), gamma (cross-reconstruction), delta (alignment)."""
        c = self.config
        return {"beta": WarmUp(c.kl_factor, c.kl_start, c.kl_end),
                "gamma": WarmUp(c.cross_reconstruction_factor, c.cross_reconstruction_start,
                                c.cross_reconstruction_end),
                "delta": WarmUp(c.alignment_factor, c.alignment_start, c.alignment_end)}

    # ---------------------------------------------------------------- training

    def _train_epoch(self, data: TaskTensors, epoch: int, monitor: TrainingMonitor
                     ) -> dict[str, float]:
        """ceil(N / B) steps, each on an independent randperm(N)[:B] draw (`next_batch`)."""
        c = self.config
        num_train = int(data.features.shape[0])
        batch_size = min(c.batch_size, num_train)
        steps = math.ceil(num_train / batch_size)
        weights = {name: warm_up.at(epoch) for name, warm_up in self.warm_ups().items()}
        reference = c.replicate_reference_bugs
        self.vaes.train()
        totals: torch.Tensor | None = None
        names: list[str] = []
        for _ in monitor.progress(range(steps), f"CADA-VAE epoch {epoch + 1}/{c.epochs}",
                                  total=steps):
            rows = torch.randperm(num_train)[:batch_size].to(self.device)
            features = data.features[rows]
            attributes = data.seen_semantics[data.labels[rows]]
            loss, terms = vae_loss(self.vaes, features, attributes, weights["beta"],
                                   weights["gamma"], weights["delta"], reference)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            names = list(terms)
            stacked = torch.stack(list(terms.values()))
            totals = stacked if totals is None else totals + stacked
        # Per-step means over the epoch (one device sync per epoch).
        means_ = (totals / steps).tolist()
        losses = dict(zip(names, means_, strict=True))
        bad = [name for name, value in losses.items() if not math.isfinite(value)]
        if bad:
            raise TrainingDivergedError(f"CADA-VAE: '{bad[0]}' is {losses[bad[0]]} in epoch "
                                        f"{epoch + 1}; the last good checkpoint is the previous "
                                        f"epoch's")
        return {**losses, **weights}

    def classifier_form(self) -> tuple[InitScheme, Batching]:
        """The latent classifier's init and epoch (`reference_classifier`): xavier gain 0.5 and
        shuffled full batches (the reference's), or N(0, 0.02^2) and carry-over batches."""
        if self.config.reference_classifier:
            return "xavier_half", "shuffle_drop_last"
        return "normal", "carry_over"

    # ---------------------------------------------------------------- evaluation

    def _evaluate(self, data: TaskTensors, epoch: int, losses: dict[str, float]
                  ) -> EpochReport:
        """The classifier stage after the last epoch and every `evaluate_every` epochs (when
        set), else a constant `uniform` candidate."""
        c = self.config
        due = epoch == c.epochs - 1 or (c.evaluate_every > 0
                                        and (epoch + 1) % c.evaluate_every == 0)
        return (self._latent_classifier(data, epoch, losses) if due
                else self._uniform_report(data, epoch, losses))

    def _uniform_report(self, data: TaskTensors, epoch: int, losses: dict[str, float]
                        ) -> EpochReport:
        """An epoch without the classifier stage: every class equally likely."""
        scores = torch.zeros(data.eval_features.shape[0], data.num_classes)
        return EpochReport(epoch=epoch, gzsl_candidates={_UNIFORM: scores}, losses=losses)

    @torch.no_grad()
    def _latent_classifier(self, data: TaskTensors, epoch: int, losses: dict[str, float]
                           ) -> EpochReport:
        """The classifier stage (`vaemodel.py:239-423`): train Linear+LogSoftmax on noisy
        latents of [seen images ; unseen attributes], test on image-encoder means.
        `reference_classifier`: the reference's classifier, built (default init, then xavier
        gain 0.5) before the latents are drawn, trained on shuffled full batches."""
        c = self.config
        reference = c.replicate_reference_bugs
        self.vaes.eval()
        devices = [self.device] if self.device.type == "cuda" else []
        # An evaluation before the last epoch must not shift the VAE's random stream.
        with torch.random.fork_rng(devices=devices):
            init, batching = self.classifier_form()
            model = (LinearLogSoftmax(c.latent_size, data.num_classes, init)
                     if c.reference_classifier else None)
            seen_rows = first_rows_per_class(data.labels, c.seen_latents_per_class)
            unseen_rows = torch.arange(data.unseen_semantics.shape[0], device=self.device
                                       ).repeat_interleave(c.unseen_latents_per_class)
            train_latents = torch.cat([
                noisy_latents(self.vaes.image_encoder, data.features, seen_rows, reference),
                noisy_latents(self.vaes.attribute_encoder, data.unseen_semantics, unseen_rows,
                              reference)])
            train_labels = torch.cat([
                data.train_positions[seen_rows],
                data.unseen_positions.repeat_interleave(c.unseen_latents_per_class)])
            eval_latents = means(self.vaes.image_encoder, data.eval_features)
            self.classifiers.clear()
            gzsl = self.classifiers.collect("classifier_epoch", "gzsl", train_classifier(
                train_latents, train_labels, eval_latents, data.num_classes,
                c.classifier_epochs, c.classifier_batch_size, c.classifier_lr,
                CLASSIFIER_BETAS, batching=batching, model=model))
        if c.classifier_candidates == "last":
            gzsl = {self.default_candidate: gzsl[self.default_candidate]}
        return EpochReport(epoch=epoch, gzsl_candidates=gzsl, losses=losses)

    # ---------------------------------------------------------------- scoring

    def _classifier_inputs(self, features: torch.Tensor) -> torch.Tensor:
        """The image-encoder means (the test latents, `vaemodel.py:315`)."""
        self.vaes.eval()
        return means(self.vaes.image_encoder, features)
