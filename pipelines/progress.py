"""The progress of a training loop as a person sees it.

On a terminal, a bar (tqdm, on stderr) moves with every step. Whatever the output is, a line with the
step's numbers is printed for the first step, about every ``1/lines`` of the run and the last step,
so that a long run shows a few lines rather than one per step; every step's numbers are in the run's
``metrics.jsonl`` (and TensorBoard). Without a terminal (CI, ``ray job logs``) there is no bar.
"""

from __future__ import annotations

import math
import sys
from typing import Any


class StepProgress:
    """``with StepProgress(steps, "sft") as progress: progress.advance(done, line)``."""

    def __init__(self, total: int, description: str, lines: int = 10) -> None:
        from tqdm import tqdm

        self.total, self.every = total, max(1, math.ceil(total / max(1, lines)))
        self.bar = tqdm(total=total, desc=description, unit="step", file=sys.stderr, disable=None, leave=False,
                        dynamic_ncols=True)

    def advance(self, done: int, line: str) -> None:
        """``done`` steps of ``total`` are finished; ``line`` says how the last one went."""
        self.bar.update(max(0, done - self.bar.n))
        if done <= 1 or done >= self.total or done % self.every == 0:
            self.note(line)

    def note(self, line: str) -> None:
        """A line between steps (a held-out loss, an evaluation) that must not break the bar."""
        self.bar.write(line, file=sys.stdout)
        sys.stdout.flush()

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> StepProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
