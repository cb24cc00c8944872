"""A `GZSLTask` as the tensors a feature-generating method trains and evaluates on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from unseen.data.tasks import GZSLTask
from unseen.errors import UnseenInputError


@dataclass
class TaskTensors:
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


def task_tensors(task: GZSLTask, device: torch.device, method_label: str = "the method"
                 ) -> TaskTensors:
    """`task` on `device`; it must have training rows of seen classes and unseen classes."""
    labels = task.benchmark.labels[task.train_idx]
    where = f"task '{task.name}' of benchmark '{task.benchmark.name}'"
    if task.train_idx.size == 0 or task.unseen_classes.size == 0:
        raise UnseenInputError(f"{where}: {method_label} needs training rows and unseen classes, "
                               f"found {task.train_idx.size} rows and "
                               f"{task.unseen_classes.size} unseen classes")
    if not np.isin(labels, task.seen_classes).all():
        raise UnseenInputError(f"{where}: training rows must belong to seen classes")

    def tensor(array: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(array), dtype=dtype, device=device)

    return TaskTensors(
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
