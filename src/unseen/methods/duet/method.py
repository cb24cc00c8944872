"""DUET as a `GZSLMethod` (input kind "images"): fit end-to-end, report class probabilities.

Training (spec §3): Adam over every parameter, lr x0.8 every 10 epochs, gradient accumulation
over `gradient_accumulation` batches. Evaluation (spec §4) pairs every image with the fixed
template; the template's language-model states are computed once per evaluation and broadcast
(the language model never sees the image). Reports hold probabilities, the scale the paper's
calibrated-stacking gammas are defined on: the runner applies gamma.

Clean mode vs `replicate_reference_bugs` (spec §6.1; the full list with where each lives is
docs/methods/duet-reference-behaviours.md):
- optimizer: persistent (clean) vs re-created every epoch (reference);
- trailing accumulation window: stepped (clean) vs left un-stepped and un-zeroed so that it
  leaks into the next epoch's first step (reference; the leftover gradients are checkpointed);
- evaluation: at every epoch end and at the `eval_*` cadence (schedule.py; the AWA2 and SUN
  presets carry the reference's); after a mid-epoch evaluation the clean version restores
  `train()`, the reference stays in eval mode (dropout off) for the rest of the epoch. Mid-epoch
  evaluations are reports with `step` set: the clean protocol selects among them on the
  validation task and retrains to the chosen batch (`stop_after_steps`); `patience` ends `fit`
  like the reference's `sys.exit`. A checkpoint at a mid-epoch evaluation resumes there;
- contrastive pools: uniform draws from the training rows (clean) vs the reference's
  pop-from-the-end lists with test-seen rows on the test task (data.py);
- X-layer padding mask (also per ACL tuple), MLM loss over padding, fresh MLM head, DeiT head:
  see model.py, data.py and losses.py;
- the reference's micro accuracies at the config gamma go in the report's `losses` as
  `micro_U`, `micro_S`, `micro_H` (AWA2 and SUN ran with `--all`).

Host syncs: loss sums stay on the device (`LossTracker`); the host reads them and checks for
NaN every `sync_every_steps` batches and before each evaluation.

`freeze_vision` (off by default; on in the CPU `shapes` preset) is an ablation, not the paper:
the vision trunk is frozen and run once per image (`_trunk_table`, float32 in memory), and
batches carry those outputs instead of pixels, so a step costs the language model, the X-layer
and the heads only. `scores` on pixels runs the same frozen trunk, so `unseen predict` agrees.

Prediction: `preprocess_images` + `scores` work on a fresh `DUET(config, seed)` after
`load_state_dict(final_checkpoint["method_state"])`: the model is built from the config and the
state is applied when the task is first seen.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler

from unseen.cache import cache_root
from unseen.errors import UnseenInputError
from unseen.methods.base import (
    EpochReport,
    GZSLMethod,
    TrainingMonitor,
    capture_rng_state,
    restore_rng_state,
    seed_everything,
)
from unseen.methods.duet.config import PRESETS, DUETConfig
from unseen.methods.duet.data import (
    ClassPools,
    DuetTrainingBatches,
    EpochSampler,
    EvaluationImages,
    ReferencePools,
    RowTable,
    identity,
    unbatched,
)
from unseen.methods.duet.distributed import DistributedContext
from unseen.methods.duet.losses import LOSS_NAMES, DuetObjective, LossTracker
from unseen.methods.duet.model import (
    EFFICIENTNET_LITE0,
    DuetModel,
    load_duet_model,
    load_tokenizer,
)
from unseen.methods.duet.paths import (
    FILE_OPTIONS,
    existing_directory,
    existing_file,
    expand,
    model_source,
)
from unseen.methods.duet.schedule import EvaluationSchedule

log = logging.getLogger(__name__)

class DUET(GZSLMethod):
    """DUET (AAAI'23): ViT + BERT + LXMERT X-layer, trained end-to-end on images."""

    name = "duet"
    config_class = DUETConfig
    presets = PRESETS
    input_kind = "images"
    description = ("DUET (Chen et al., AAAI 2023): cross-modal semantic grounding of a ViT's "
                   "visual token with attribute texts in BERT; end-to-end on images")
    loss_keys = ("loss", *LOSS_NAMES)  # mask_batches, contrast_tuples are counters

    def __init__(self, config: DUETConfig, seed: int) -> None:
        super().__init__(config, seed)
        self.config: DUETConfig = config
        self.distributed = DistributedContext()
        self.model: DuetModel | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self._task_key: tuple | None = None
        self._pending_state: dict[str, Any] | None = None
        self._position = (0, 0)  # (epoch, batches of it trained): where a checkpoint resumes
        self._resume_step = 0
        self._eval_mode_sticks = False
        self._pools = None
        self._pending_pool_state: dict[str, Any] | None = None
        self._pixel_cache = None
        self._eval_loader: tuple[Any, DataLoader] | None = None
        self._trunk_table: RowTable | None = None
        self._pending_rng: dict[str, Any] | None = None

    # ------------------------------------------------------------------ public API

    def is_main_process(self) -> bool:
        """True on rank 0 (and in single-process runs): the only rank that may write files."""
        return self.distributed.is_main_process

    def fit(self, task, monitor: TrainingMonitor) -> None:
        cfg = self.config
        self.distributed = DistributedContext.from_env(self.device.type)
        seed_everything(self.seed)
        self._prepare(task)
        device = self._device
        if device.type == "cpu":
            choose_cpu_threads(cfg.cpu_threads)
        if self._pending_rng is not None:  # resuming: continue the checkpointed RNG streams
            restore_rng_state(self._pending_rng)
            self._pending_rng = None
        objective = self.distributed.wrap(self._objective, device,
                                          ignored=self._objective.never_used_parameters(),
                                          static=self._objective.same_parameters_every_step())
        data = self._training_batches(task)
        inner = None
        if self.distributed.enabled:
            inner = DistributedSampler(data, self.distributed.world_size, self.distributed.rank,
                                       shuffle=True, seed=self.seed)
        sampler = EpochSampler(len(data), inner)
        # one loader for the whole fit: persistent workers keep their copy of the text builder
        # and tables instead of re-forking every epoch
        loader = DataLoader(data, batch_size=None, sampler=sampler, collate_fn=unbatched,
                            num_workers=cfg.num_workers, pin_memory=device.type == "cuda",
                            persistent_workers=cfg.num_workers > 0)
        schedule = EvaluationSchedule.from_config(cfg)
        steps = cfg.gradient_accumulation
        total = len(inner) if inner is not None else len(data)
        for epoch in range(self.start_epoch, cfg.epochs):
            first = self._resume_step if epoch == self.start_epoch else 0
            sticks, self._resume_step, self._eval_mode_sticks = (
                bool(first and self._eval_mode_sticks), 0, False)  # used once, by this epoch
            sampler.set_epoch(epoch, first)
            self._set_learning_rate(epoch, new_epoch=first == 0)
            self.model.train(not sticks)
            stop = total
            if cfg.stop_after_steps > 0 and epoch == cfg.epochs - 1:
                stop = min(cfg.stop_after_steps, total)
            tracker = LossTracker(device)
            patience_stop = False
            batches = monitor.progress(loader, f"duet epoch {epoch}", len(sampler))
            for step, batch in enumerate(batches, start=first):
                batch = data.attach_pool_images(batch).to(device, self._input_normaliser)
                last = step == total - 1
                window_end = (step + 1) % steps == 0
                sync = window_end or last
                no_sync = (objective.no_sync() if self.distributed.enabled and not sync
                           else contextlib.nullcontext())
                with no_sync, self._autocast():
                    loss, parts = objective(batch)
                    (loss / steps).backward()
                tracker.add(loss, parts, batch)
                if (step + 1) % cfg.sync_every_steps == 0:
                    tracker.check(epoch, step)
                if window_end or (last and not cfg.replicate_reference_bugs):
                    self.optimizer.step()
                    self.optimizer.zero_grad(set_to_none=True)
                if step + 1 == stop:
                    break
                if not schedule.mid_epoch(epoch, step + 1, total, window_end):
                    continue
                if cfg.replicate_reference_bugs:  # eval mode sticks until the next epoch
                    self.model.eval()
                if cfg.stop_after_steps >= 0:  # a retrain to a chosen point: no evaluation
                    continue
                if self._evaluate(task, monitor, epoch, step + 1, tracker, (epoch, step + 1)):
                    patience_stop = True
                    break
            if patience_stop:
                break
            stopped = stop < total  # a retrain that ends at its chosen point
            if self._evaluate(task, monitor, epoch, stop if stopped else None, tracker,
                              (epoch + 1, 0)) or stopped:
                break
        self.start_epoch = max(self.start_epoch, self._position[0])

    def _evaluate(self, task, monitor: TrainingMonitor, epoch: int, step: int | None,
                  tracker: LossTracker, position: tuple[int, int]) -> bool:
        """Evaluate, hand the report to the monitor (which checkpoints `position`, where a
        resumed run continues); True when patience says stop. `step` None: the end of
        `epoch`; else the batches of `epoch` trained so far."""
        tracker.check(epoch, (step or 0) - 1)
        self._position = position
        was_training = self.model.training
        report = self._report(task, epoch, self.distributed.mean(tracker.means()), step)
        self.model.train(was_training)
        monitor.epoch_end(self, report)
        return self._patience_exhausted(monitor)

    def _patience_exhausted(self, monitor: TrainingMonitor) -> bool:
        """The reference's early stop: `patience` evaluations in a row below the best H (it
        resets on H >= best). Reads the H history of the runner's SelectionMonitor."""
        history = getattr(getattr(monitor, "selection", None), "history_H", None)
        if not self.config.patience or not history:
            return False
        best, counter = -np.inf, 0
        for value in history:
            counter = 0 if value >= best else counter + 1
            best = max(best, value)
        if counter > self.config.patience:
            log.info("DUET: %d evaluations without reaching the best H %.4f; stopping (patience "
                     "%d)", counter, best, self.config.patience)
            return True
        return False

    def preprocess_images(self, task, paths: list[Path]) -> Tensor:
        """Normalised pixels [n, 3, H, W] of image files, exactly as training saw its images
        (the preprocessor the config names: same resize, same uint8 rounding, same
        normalisation). `task` is unused: the preprocessing depends on the config only."""
        from unseen.methods.duet.pixel_cache import load_uint8

        preprocessor = self._image_preprocessor()
        return preprocessor.normalise(np.stack([load_uint8(Path(p), preprocessor)
                                                for p in paths]))

    def scores(self, task, inputs: Tensor, candidate: str | None = None) -> Tensor:
        """Class probabilities [n, K] over `task.classes` for normalised pixels [n, 3, H, W]
        (`preprocess_images`); works on a fresh instance after `load_state_dict`."""
        if candidate not in (None, "epoch"):
            raise UnseenInputError(f"DUET candidate '{candidate}': expected 'epoch' (DUET has "
                                   "one classifier)")
        self._prepare(task)
        logits = self._template_logits([inputs[i:i + self.config.eval_batch_size]
                                        for i in range(0, inputs.shape[0],
                                                       self.config.eval_batch_size)])
        return torch.softmax(logits, dim=-1)

    def state_dict(self) -> dict[str, Any]:
        if self.model is None:
            raise RuntimeError("DUET.state_dict() before fit(): nothing to save")
        epoch, step = self._position
        state = {"model": self.model.state_dict(),
                 "optimizer": self.optimizer.state_dict() if self.optimizer else None,
                 "scaler": None,  # bf16 autocast needs no loss scaling
                 "rng": capture_rng_state(), "epoch": epoch, "step": step,
                 # reference: a mid-epoch evaluation left the model in eval mode
                 "eval_mode": bool(step and not self.model.training),
                 "config": asdict(self.config), "seed": self.seed}
        if self._pools is not None and not self._pools.stateless:
            state["pool_state"] = self._pools.state_dict()
        if self.config.replicate_reference_bugs:  # the trailing window leaks into next epoch
            state["pending_gradients"] = {
                name: p.grad.detach().clone() for name, p in self.model.named_parameters()
                if p.grad is not None}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending_state = state
        self.start_epoch = int(state["epoch"])
        self._resume_step = int(state.get("step", 0))
        self._eval_mode_sticks = bool(state.get("eval_mode", False))
        self._position = (self.start_epoch, self._resume_step)
        if self.model is not None:
            self._apply_pending_state()

    # ------------------------------------------------------------------ setup

    @property
    def _device(self) -> torch.device:
        return self.distributed.device(self.device)

    def _prepare(self, task) -> None:
        """Build (once per task) the vocabulary, text builder, model and objective."""
        key = (id(task.benchmark), task.name, tuple(task.seen_classes), tuple(task.unseen_classes))
        if self._task_key == key:
            return
        from unseen.methods.duet.attributes import load_attribute_vocabulary
        from unseen.methods.duet.text import DuetTextBuilder

        cfg = self.config
        source = task.benchmark.source
        style = cfg.duet_style or source.get("duet_style", "generic")
        files = {option: existing_file(getattr(cfg, option) or source.get(option, ""), option)
                 for option in FILE_OPTIONS}
        vision_model, text_model = self._model_sources()
        vocab = load_attribute_vocabulary(
            task.benchmark, style, groups_json=files["attribute_groups"],
            mapping_json=files["attribute_mapping"], attributes_txt=files["attributes_txt"],
            manifest_names=manifest_attribute_names(task.benchmark))
        tokenizer = load_tokenizer(text_model)
        self._builder = DuetTextBuilder(
            vocab, task.semantics, task.seen_classes, tokenizer, cfg.max_length,
            attribute_dropout=cfg.attribute_dropout, prune_length=cfg.prune_length or None,
            replicate_reference_bugs=cfg.replicate_reference_bugs)
        self._tokenizer = tokenizer
        device = self._device
        if self.model is None:
            self.model = load_duet_model(vision_model, text_model,
                                         int(task.semantics.shape[1]),
                                         cfg.replicate_reference_bugs, cfg.mlm_head).to(device)
            if cfg.freeze_vision:
                self.model.vision.freeze_trunk()
        semantics = task.semantics[task.classes].astype(np.float32)
        semantics /= np.maximum(np.linalg.norm(semantics, axis=1, keepdims=True), 1e-12)
        self._semantics = torch.from_numpy(semantics).to(device)
        self._is_seen = torch.from_numpy(task.is_seen_class).to(device)
        seen_columns = torch.from_numpy(np.searchsorted(task.classes, task.seen_classes))
        self._template = torch.tensor(self._builder.template_ids(), dtype=torch.long)
        self._objective = DuetObjective(
            self.model, self._semantics, seen_columns, self._is_seen, cfg.loss_weights(),
            self._template, share_template_states=not cfg.replicate_reference_bugs,
            trunk_features=cfg.freeze_vision, mask_probability=cfg.mask_probability).to(device)
        self._preprocessor = self._image_preprocessor()
        if self._pending_state is not None:
            self._apply_pending_state()
        self._task_key = key

    def _apply_pending_state(self) -> None:
        state, self._pending_state = self._pending_state, None
        self.model.load_state_dict(state["model"])
        if state.get("optimizer") is not None:
            self.optimizer = self._new_optimizer(self.config.learning_rate(self.start_epoch))
            self.optimizer.load_state_dict(state["optimizer"])
        parameters = dict(self.model.named_parameters())
        for name, grad in state.get("pending_gradients", {}).items():
            parameters[name].grad = grad.to(parameters[name].device).clone()
        self._pending_rng = state.get("rng")
        self._pending_pool_state = state.get("pool_state")

    def _new_optimizer(self, lr: float) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
        # The fused kernel is the same Adam update; on CPU PyTorch's default is a per-tensor
        # Python loop, ~20x slower for DUET's 40 M parameters (3.3 s vs 0.17 s, 2 cores).
        fused = self._device.type in ("cpu", "cuda")
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                                fused=fused)

    def _set_learning_rate(self, epoch: int, new_epoch: bool = True) -> None:
        lr = self.config.learning_rate(epoch)
        if self.optimizer is None or (self.config.replicate_reference_bugs and new_epoch):
            # The reference builds a fresh Adam at every epoch start (moments reset).
            self.optimizer = self._new_optimizer(lr)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def _autocast(self):
        device = self._device
        use = self.config.amp == "bf16" or (self.config.amp == "auto" and device.type == "cuda")
        if not use:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=torch.bfloat16)

    def _model_sources(self) -> tuple[str, str]:
        """(vision, text): `~` expanded, local directories checked, hub ids as given."""
        return (model_source(self.config.vision_model, "vision_model"),
                model_source(self.config.text_model, "text_model"))

    def _image_preprocessor(self):
        from unseen.backbones.image_processing import ImagePreprocessor

        if self.config.vision_model.lower() == EFFICIENTNET_LITE0:
            return ImagePreprocessor.for_efficientnet_lite0(self.config.image_resolution)
        return ImagePreprocessor.from_model_dir(self._model_sources()[0])

    def _pixels(self, task):
        """The benchmark's uint8 pixel cache (built on rank 0, then opened by every rank)."""
        if self._pixel_cache is not None:
            return self._pixel_cache
        from unseen.data.images import resolve_image_paths
        from unseen.methods.duet.pixel_cache import PixelCache

        source = task.benchmark.source
        root = self.config.image_root or source.get("image_root", "")
        if not root:
            raise UnseenInputError(f"option 'image_root': expected the folder of the images of "
                                   f"'{task.benchmark.name}' (--set image_root=DIR), found none")
        root = existing_directory(root, "image_root", "the folder of the benchmark's images")
        paths = resolve_image_paths(task.benchmark, root, self.config.image_path_rule)
        cache_dir = Path(expand(self.config.pixel_cache_dir) or cache_root() / "duet_pixels")
        if self.distributed.is_main_process:
            PixelCache.build(paths, self._preprocessor, cache_dir, progress=True)
        self.distributed.barrier()
        self._pixel_cache = PixelCache.build(paths, self._preprocessor, cache_dir, progress=False)
        return self._pixel_cache

    @property
    def _input_normaliser(self):
        """uint8 pixels -> model input; precomputed trunk outputs need nothing."""
        return identity if self.config.freeze_vision else self._preprocessor.normalise

    def _visual_inputs(self, task):
        """rows -> what batches carry: uint8 pixels, or the frozen trunk's outputs."""
        if not self.config.freeze_vision:
            return self._pixels(task).uint8
        if self._trunk_table is None:
            self._trunk_table = self._compute_trunk_table(self._pixels(task))
        return self._trunk_table

    @torch.no_grad()
    def _compute_trunk_table(self, cache) -> RowTable:
        """The frozen vision trunk's output for every benchmark image, once (float32, CPU)."""
        vision, device = self.model.vision, self._device
        was_training = vision.training
        vision.eval()
        rows = np.arange(len(cache))
        starts = range(0, rows.size, self.config.eval_batch_size)
        chunks = []
        with self._autocast():
            for start in starts:
                pixels = cache.pixels(rows[start:start + self.config.eval_batch_size])
                chunks.append(vision.trunk(pixels.to(device)).float().cpu().contiguous())
        vision.train(was_training)
        return RowTable(torch.cat(chunks))

    def _training_batches(self, task) -> DuetTrainingBatches:
        inputs = self._visual_inputs(task)
        seen = task.seen_classes
        train_rows = task.train_idx
        pool_rows = train_rows
        if self.config.replicate_reference_bugs and task.name == "test":
            pool_rows = np.concatenate([train_rows, task.eval_seen_idx])  # spec §6.1 leakage
        local = np.searchsorted(seen, task.benchmark.labels)
        if self.config.replicate_reference_bugs:
            pools = ReferencePools(pool_rows, local[pool_rows], seen.size, self.seed)
            if self._pending_pool_state is not None:
                pools.load_state_dict(self._pending_pool_state)
                self._pending_pool_state = None
        else:
            pools = ClassPools(pool_rows, local[pool_rows], seen.size)
        self._pools = pools
        return DuetTrainingBatches(
            train_rows, local[train_rows], self._builder, inputs, pools, self.config.batch_size,
            self.config.mask_probability, self._tokenizer.pad_token_id, self.seed,
            build_contrast=self.config.contrast_weight != 0,
            per_tuple_padding=self.config.replicate_reference_bugs)

    # ------------------------------------------------------------------ evaluation

    @torch.no_grad()
    def _template_logits(self, pixel_batches, trunk_features: bool = False) -> Tensor:
        """pre_attri . att^T [n, K] (float32, CPU) for the images, each with the template;
        `trunk_features`: the batches hold the frozen trunk's outputs, not pixels."""
        model = self.model
        was_training = model.training
        model.eval()
        device = self._device
        ids = self._template.to(device)[None]
        mask = torch.ones_like(ids)
        out = []
        with self._autocast():
            states = model.encode_text(ids, mask)  # once per evaluation, broadcast to batches
            for pixels in pixel_batches:
                pixels = pixels.to(device, non_blocking=True)
                if pixels.dtype == torch.uint8:
                    pixels = self._preprocessor.normalise(pixels)
                result = model(pixels, ids, mask, text_states=states,
                               trunk_features=trunk_features)
                out.append(model.class_logits(result.pre_attri, self._semantics).float().cpu())
        if was_training and not self.config.replicate_reference_bugs:
            model.train()
        return torch.cat(out) if out else torch.empty(0, self._semantics.shape[0])

    def _evaluation_logits(self, task) -> Tensor:
        rows = task.eval_idx
        if self._eval_loader is None or self._eval_loader[0] != self._task_key:
            shard = self.distributed.shard(rows)
            images = EvaluationImages(shard, self._visual_inputs(task),
                                      self.config.eval_batch_size)
            workers = min(self.config.num_workers, len(images))
            # kept for the task: mid-epoch evaluations reuse the workers instead of forking
            self._eval_loader = (self._task_key, DataLoader(
                images, batch_size=None, collate_fn=unbatched, num_workers=workers,
                persistent_workers=workers > 0))
        local = self._template_logits(self._eval_loader[1],
                                      trunk_features=self.config.freeze_vision)
        return self.distributed.gather_rows(local.to(self._device), rows.size).cpu()

    def _report(self, task, epoch: int, losses: dict[str, float],
                step: int | None = None) -> EpochReport:
        logits = self._evaluation_logits(task)
        probabilities = torch.softmax(logits, dim=-1)
        unseen_columns = torch.from_numpy(~task.is_seen_class)
        n_seen = task.eval_seen_idx.size
        zsl = torch.softmax(logits[n_seen:][:, unseen_columns], dim=-1)
        if self.config.replicate_reference_bugs:
            losses = losses | micro_accuracies(probabilities, task, self.config.gamma)
        return EpochReport(epoch=epoch, gzsl_candidates={"epoch": probabilities},
                           zsl_candidates={"epoch": zsl}, losses=losses, step=step)


def micro_accuracies(probabilities: Tensor, task, gamma: float) -> dict[str, float]:
    """Overall (sample) accuracies U, S, H after subtracting gamma from seen probabilities."""
    is_seen = torch.from_numpy(task.is_seen_class)
    predictions = (probabilities - gamma * is_seen.float()).argmax(dim=1).numpy()
    correct = predictions == task.labels_of(task.eval_idx)
    n_seen = task.eval_seen_idx.size
    seen = float(correct[:n_seen].mean()) if n_seen else 0.0
    unseen = float(correct[n_seen:].mean()) if correct.size > n_seen else 0.0
    harmonic = 2 * seen * unseen / (seen + unseen) if seen + unseen > 0 else 0.0
    return {"micro_U": unseen, "micro_S": seen, "micro_H": harmonic}


def choose_cpu_threads(requested: int) -> int:
    """Set torch's CPU threads for training: `requested` when > 0; else torch's own choice,
    unless the user set none (--threads, UNSEEN_THREADS, OMP_NUM_THREADS) and the machine is
    busy: then the cores its 1-minute load leaves free (at least 1). OpenMP threads that
    outnumber free cores spin against other processes and slow every step down."""
    import os

    if requested > 0:
        torch.set_num_threads(requested)
    elif not any(os.environ.get(k) for k in ("UNSEEN_THREADS", "OMP_NUM_THREADS")) and \
            torch.get_num_threads() == _DEFAULT_THREADS and hasattr(os, "getloadavg"):
        free = (os.cpu_count() or 1) - int(round(os.getloadavg()[0]))
        if free < torch.get_num_threads():
            log.info("DUET: %d CPU thread(s) (load average %.1f on %d cores; set "
                     "--threads or cpu_threads to override)", max(1, free),
                     os.getloadavg()[0], os.cpu_count() or 1)
            torch.set_num_threads(max(1, free))
    return torch.get_num_threads()


_DEFAULT_THREADS = torch.get_num_threads()  # at import: what nobody has changed yet


def manifest_attribute_names(benchmark) -> list[str] | None:
    """A built data set's attribute names (`unseen data build`, manifest `attribute_names`),
    when the benchmark does not carry them itself. A set built from class descriptions only
    has none: DUET writes its texts from attribute names, so that is an input error."""
    manifest = benchmark.source.get("manifest")
    if not isinstance(manifest, dict) or benchmark.attribute_names is not None:
        return None
    names = manifest.get("attribute_names")
    if not names:
        raise UnseenInputError(
            f"data set '{benchmark.name}' (unseen.json): field 'attribute_names': expected the "
            "attribute names DUET writes its texts from, found none (built from descriptions "
            "only); rebuild it with `unseen data build ... --attributes CLASS_ATTRIBUTES.csv`")
    return [str(name) for name in names]

