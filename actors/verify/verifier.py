"""The Verifier Python API: verify(tasks, completions) -> verdicts, in parallel over slots."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed

from actors.contracts import Completion, Task, Verdict
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob, run_subprocess

EXECUTORS: dict[str, Callable[[VerificationJob, VerifierConfig], Verdict]] = {
    "subprocess": run_subprocess,
}


def pair_jobs(tasks: Iterable[Task], completions: Iterable[Completion]) -> list[VerificationJob]:
    """Match completions to their tasks; a completion for an unknown task is an error, not a skip."""
    by_id = {task.task_id: task for task in tasks}
    jobs = []
    for completion in completions:
        if completion.task_id not in by_id:
            raise KeyError(f"completion for unknown task {completion.task_id!r} (sample {completion.sample_idx})")
        jobs.append(VerificationJob(by_id[completion.task_id], completion.text, completion.sample_idx))
    return jobs


def reference_jobs(tasks: Iterable[Task]) -> list[VerificationJob]:
    """One job per task that carries its reference solution (QHE's canonical_solution)."""
    jobs = []
    for task in tasks:
        if task.reference_solution is None:
            raise ValueError(f"task {task.task_id!r} has no reference solution to verify")
        jobs.append(VerificationJob(task, task.reference_solution, 0))
    return jobs


def verify_job(job: VerificationJob, config: VerifierConfig) -> Verdict:
    return EXECUTORS[config.executor](job, config)


class Verifier:
    """Runs verifications ``slots`` at a time in this process (each in its own child)."""

    def __init__(self, config: VerifierConfig | None = None, slots: int = 1) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.config = config or VerifierConfig()
        self.slots = slots

    def verify(self, tasks: Iterable[Task], completions: Iterable[Completion]) -> list[Verdict]:
        """Verdicts in the order of ``completions``."""
        return self.run(pair_jobs(tasks, completions))

    def run(self, jobs: list[VerificationJob]) -> list[Verdict]:
        verdicts: list[Verdict | None] = [None] * len(jobs)
        for index, verdict in self.stream(jobs):
            verdicts[index] = verdict
        return verdicts  # type: ignore[return-value]

    def stream(self, jobs: list[VerificationJob]) -> Iterator[tuple[int, Verdict]]:
        """(index, verdict) pairs as they finish."""
        with ThreadPoolExecutor(max_workers=self.slots) as pool:
            futures = {pool.submit(verify_job, job, self.config): index for index, job in enumerate(jobs)}
            for future in as_completed(futures):
                yield futures[future], future.result()
