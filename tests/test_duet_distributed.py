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


def _config(root: Path) -> DUETConfig:
    return DUETConfig(vision_model=str(root / "deit"), text_model=str(root / "bert"), epochs=1,
                      batch_size=4, gradient_accumulation=1, num_workers=0, lr=1e-3,
                      max_length=64, pixel_cache_dir=str(root / "cache"), device="cpu")


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


def _worker(rank: int, world_size: int, root: str, port: int) -> None:
    import os

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    root = Path(root)
    task = make_test_task(tiny_image_benchmark(root / "images", images_per_class=5))
    try:
        DUET(_config(root), seed=0).fit(task, RankMonitor(root, rank))
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
