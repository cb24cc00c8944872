"""DUET under DistributedDataParallel: 2 CPU processes (gloo), one short epoch."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from duet_fixtures import ATTRIBUTE_WORDS, save_tiny_bert, save_tiny_deit, tiny_image_benchmark

from unseen.data.tasks import make_test_task
from unseen.io import atomic_torch_save
from unseen.methods.duet import DUET, DUETConfig
from unseen.methods.duet.distributed import DistributedContext


def _config(root: Path, **overrides) -> DUETConfig:
    return DUETConfig(**{**dict(vision_model=str(root / "deit"), text_model=str(root / "bert"),
                                epochs=1, batch_size=4, gradient_accumulation=1, num_workers=0,
                                lr=1e-3, max_length=64, pixel_cache_dir=str(root / "cache"),
                                device="cpu"), **overrides})


class RankMonitor:
    """The runner's contract: every rank gets `epoch_end`, only the main process writes."""

    def __init__(self, root: Path, rank: int) -> None:
        self.root, self.rank = root, rank

    def epoch_end(self, method, report) -> None:
        scores = report.gzsl_candidates["epoch"]
        torch.save(scores, self.root / f"scores_seen_by_rank{self.rank}.pt")  # test output
        if method.is_main_process():
            atomic_torch_save(self.root / "run" / "checkpoint.pt",
                              {"state": method.state_dict(), "written_by": self.rank})

    def progress(self, iterable, description, total=None):
        return iterable


def _worker(rank: int, world_size: int, root: str, port: int,
            mask_probability: float = 0.4) -> None:
    import os

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    root = Path(root)
    task = make_test_task(tiny_image_benchmark(root / "images", images_per_class=5))
    try:
        DUET(_config(root, mask_probability=mask_probability), seed=0).fit(
            task, RankMonitor(root, rank))
    finally:
        torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_context_shards_and_gathers_in_order_single_process():
    context = DistributedContext()
    rows = np.arange(7)
    assert np.array_equal(context.shard(rows), rows)
    local = torch.arange(14.0).view(7, 2)
    assert torch.equal(context.gather_rows(local, 7), local)
    assert context.is_main_process and not context.enabled


@pytest.mark.slow
def test_two_process_training_matches_single_process_evaluation(tmp_path):
    save_tiny_deit(tmp_path / "deit")
    save_tiny_bert(tmp_path / "bert", extra_words=ATTRIBUTE_WORDS)
    tiny_image_benchmark(tmp_path / "images", images_per_class=5)
    mp.spawn(_worker, args=(2, str(tmp_path), _free_port()), nprocs=2, join=True)

    checkpoints = list(tmp_path.rglob("checkpoint.pt"))
    assert checkpoints == [tmp_path / "run" / "checkpoint.pt"]
    saved = torch.load(checkpoints[0], weights_only=False)
    assert saved["written_by"] == 0
    gathered = [torch.load(tmp_path / f"scores_seen_by_rank{r}.pt") for r in (0, 1)]
    torch.testing.assert_close(gathered[0], gathered[1], atol=0, rtol=0)

    # One process, the same weights: the sharded-and-gathered scores are the full evaluation.
    task = make_test_task(tiny_image_benchmark(tmp_path / "images", images_per_class=5))
    single = DUET(_config(tmp_path), seed=0)
    single.load_state_dict(saved["state"])
    single._prepare(task)
    expected = torch.softmax(single._evaluation_logits(task), dim=-1)
    assert expected.shape == (task.eval_idx.size, task.classes.size)
    torch.testing.assert_close(gathered[0], expected, atol=1e-5, rtol=1e-5)


def test_unused_parameters_per_branch_match_the_analysis(tmp_path):
    """What DDP is told (never-used parameters ignored; a static graph only when every step
    uses the same parameters) is what a template batch and a mask batch really use."""
    save_tiny_deit(tmp_path / "deit")
    save_tiny_bert(tmp_path / "bert", extra_words=ATTRIBUTE_WORDS)
    task = make_test_task(tiny_image_benchmark(tmp_path / "images", images_per_class=5))
    method = DUET(_config(tmp_path), seed=0)
    method._prepare(task)
    data = method._training_batches(task)
    objective = method._objective
    trainable = {n for n, p in objective.named_parameters() if p.requires_grad}
    never = set(objective.never_used_parameters())
    from unseen.methods.duet.losses import LANGUAGE_SIDE_PREFIXES

    branch_only = {n for n in trainable if n.startswith(("model.mlm_head.",
                                                         "model.contrast_projection.",
                                                         *LANGUAGE_SIDE_PREFIXES))}
    seen = {}
    for index in range(len(data)):
        batch = data[(0, index)]
        kind = "mask_acl" if batch.contrast_ids is not None else (
            "mask" if batch.masked else "template")
        if kind in seen:
            continue
        objective.zero_grad(set_to_none=True)
        objective(batch.to(torch.device("cpu"), method._input_normaliser))[0].backward()
        seen[kind] = {n for n, p in objective.named_parameters()
                      if p.requires_grad and p.grad is None}
    assert {"template", "mask_acl"} <= set(seen)
    assert seen["template"] == never | branch_only
    assert seen["mask_acl"] == never
    if "mask" in seen:  # a mask batch without an ACL tuple
        assert seen["mask"] == never | {n for n in branch_only if "contrast_projection" in n}
    assert not objective.same_parameters_every_step()
    template_only = DUET(_config(tmp_path, mask_probability=0.0), seed=0)
    template_only._prepare(task)
    assert template_only._objective.same_parameters_every_step()
    assert set(template_only._objective.never_used_parameters()) == never | branch_only


@pytest.mark.slow
def test_two_process_static_graph_training_runs(tmp_path):
    """mask_probability=0: no unused-parameter search, static graph; DDP would fail the
    backward if a parameter it was not told to ignore were unused."""
    save_tiny_deit(tmp_path / "deit")
    save_tiny_bert(tmp_path / "bert", extra_words=ATTRIBUTE_WORDS)
    tiny_image_benchmark(tmp_path / "images", images_per_class=5)
    mp.spawn(_worker, args=(2, str(tmp_path), _free_port(), 0.0), nprocs=2, join=True)
    gathered = [torch.load(tmp_path / f"scores_seen_by_rank{r}.pt") for r in (0, 1)]
    torch.testing.assert_close(gathered[0], gathered[1], atol=0, rtol=0)
