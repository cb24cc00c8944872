"""What a person sees while a run trains: one line per epoch on stderr, a bar on a terminal.

The line follows the convention of the field's training loops (one `print` per epoch with the
losses and the validation figure), so a run piped into a file or a job log shows progress:

    [seed 0 | validation] epoch 3/20  critic_loss -1.234  generator_loss 0.4512  H 51.2  (4.1 s)

Lines go to stderr, so `unseen train ... > results.txt` keeps the results table alone on
stdout. The bar (tqdm, also stderr) is drawn only on a terminal. `quiet=True` silences both,
and only the main process of a distributed run prints.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tqdm.auto import tqdm

from unseen.parallel import is_main_process


class Console:
    """Per-epoch lines and progress bars of one run; silent when quiet or not rank 0."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    @property
    def enabled(self) -> bool:
        return not self.quiet and is_main_process()

    def bar(self, iterable: Iterable[Any], description: str, total: int | None = None
            ) -> Iterable[Any]:
        """`iterable` wrapped in a tqdm bar that is drawn only on a terminal."""
        return tqdm(iterable, desc=description, total=total, leave=False,
                    disable=not (self.enabled and sys.stderr.isatty()))

    def print(self, line: str) -> None:
        """One line on stderr, above any open bar."""
        if self.enabled:
            tqdm.write(line, file=sys.stderr)

    def epoch_printer(self, seed: int, phase: str, epochs: int,
                      loss_keys: Sequence[str] | None) -> Callable[[dict[str, Any]], None]:
        """A function that prints the line of each metrics row of one (seed, phase); the
        seconds are those since the previous row (or since this call, for the first)."""
        last = [time.monotonic()]

        def print_row(row: dict[str, Any]) -> None:
            now = time.monotonic()
            self.print(epoch_line(seed, phase, row, epochs, loss_keys, now - last[0]))
            last[0] = now

        return print_row


def epoch_line(seed: int, phase: str, row: dict[str, Any], epochs: int,
               loss_keys: Sequence[str] | None, seconds: float) -> str:
    """`[seed S | phase] epoch E/N  loss value ...  H h  (t s)` for one metrics row.

    `row` is a runner metrics row (0-based `epoch`, losses as `loss_<name>`, H as a fraction);
    `loss_keys` names the losses to show (None: every `loss_*` value of the row)."""
    parts = [f"[seed {seed} | {phase}] epoch {int(row['epoch']) + 1}/{epochs}"]
    for key in selected_loss_columns(row, loss_keys):
        value = row[key]
        if isinstance(value, (int, float)) and math.isfinite(value):
            parts.append(f"{key.removeprefix('loss_')} {value:.4g}")
    h = row.get("H")
    if isinstance(h, (int, float)) and math.isfinite(h):
        parts.append(f"H {h * 100:.1f}")
    parts.append(f"({seconds:.1f} s)")
    return "  ".join(parts)


def selected_loss_columns(row: dict[str, Any], loss_keys: Sequence[str] | None) -> list[str]:
    """The metrics columns (`loss_<name>`) of `row` that are losses, in the declared order."""
    if loss_keys is None:
        return [key for key in row if key.startswith("loss_")]
    return [f"loss_{name}" for name in loss_keys if f"loss_{name}" in row]


def seed_line(result: dict[str, Any]) -> str:
    """`[seed S] test  U u  S s  H h  T1 t  (epoch e, candidate c, stacking gamma g chosen on
    validation; n s)` for a seed's entry of results.json."""
    figures = "  ".join(f"{metric} {result[metric] * 100:.1f}" for metric in ("U", "S", "H", "T1")
                        if isinstance(result.get(metric), (int, float)))
    selected = result.get("selected", {})
    choice = f"epoch {selected.get('epoch', -1) + 1}"
    if selected.get("candidate"):
        choice += f", candidate {selected['candidate']}"
    if isinstance(result.get("gamma"), (int, float)):
        choice += f", stacking gamma {result['gamma']:.3g}"
    return (f"[seed {result['seed']}] test  {figures}  ({choice} chosen on "
            f"{selected.get('on', '?')}; {result.get('seconds', 0):.0f} s)")
