"""When DUET evaluates inside an epoch (spec §3.7, §4.3), as a pure function of the position.

The reference evaluates at every epoch end and, mid-epoch, after
- AWA2: every 100th batch of an epoch (20 x gradient_time) once 1,000 batches were trained in
  all: 14 mid-epoch evaluations in the first epoch, 23 in each later one;
- SUN: batch 644 of every epoch from the 6th (0-based epoch >= 5);
- CUB: never (its "half the epoch" test compares an int with 504.5);
and only where an accumulation window has just been stepped. After a mid-epoch evaluation the
model stays in eval mode (dropout off) until the next epoch starts: reproduced under
`replicate_reference_bugs`, while the clean version returns to train mode at once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EvaluationSchedule:
    every_steps: int = 0  # 0: off
    start_step: int = 0  # global batches trained before `every_steps` applies
    at_step: int = 0  # 0: off
    from_epoch: int = 0

    @classmethod
    def from_config(cls, config) -> EvaluationSchedule:
        return cls(config.eval_every_steps, config.eval_start_step, config.eval_at_step,
                   config.eval_from_epoch)

    @property
    def active(self) -> bool:
        return bool(self.every_steps or self.at_step)

    def mid_epoch(self, epoch: int, batches_done: int, batches_per_epoch: int,
                  window_end: bool) -> bool:
        """True when the reference evaluates after `batches_done` (1-based) batches of
        `epoch`, other than at the epoch's end (always evaluated)."""
        if not window_end or batches_done >= batches_per_epoch or epoch < self.from_epoch:
            return False
        trained = epoch * batches_per_epoch + batches_done
        periodic = (self.every_steps > 0 and batches_done % self.every_steps == 0
                    and trained >= self.start_step)
        return periodic or batches_done == self.at_step
