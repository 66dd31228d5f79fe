"""The Verifier Python API: verify(tasks, completions) -> verdicts, in parallel over slots.

Each slot owns one warm zygote that forks an isolated child per job (the ``forked`` executor, the
only one that verifies model output). Benchmarks also measure floors and a baseline, chosen by
the ``executor`` argument and never by config: ``inprocess`` (the job runs in the warm zygote
itself), ``bare`` (a plain fork per job, no isolation) and ``subprocess`` (a fresh interpreter
per job). Verdicts come back in completion
order from :meth:`Verifier.verify`, or as they finish from :meth:`Verifier.stream`. A task served
by the QPU gateway runs first in the cheaper simulator tiers of ``verifier.tiers``, and reaches
the QPU only when it passes them (:meth:`Verifier._through_tiers`).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Literal

from actors.contracts import Completion, Task, Verdict
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob, make_verdict, no_code_verdict, run_subprocess, timed
from actors.verify.extract import extract_code
from actors.verify.forkserver import ForkServer
from actors.verify.noise.config import NoiseConfig
from actors.verify.noise.references import mark_reference, reference_runs
from actors.verify.noise.settle import settle
from actors.verify.qpu.gateway import gateway_handler
from actors.verify.rewards.measures import requests
from actors.verify.sandbox.config import load_plugins


def pair_jobs(tasks: Iterable[Task], completions: Iterable[Completion]) -> list[VerificationJob]:
    """Match completions to their tasks and extract their code; an unknown task id is an error."""
    by_id = {task.task_id: task for task in tasks}
    jobs = []
    for completion in completions:
        if completion.task_id not in by_id:
            raise KeyError(f"completion for unknown task {completion.task_id!r} (sample {completion.sample_idx})")
        task = by_id[completion.task_id]
        jobs.append(VerificationJob(task, extract_code(completion.text, task.harness), completion.sample_idx,
                                    completion.text))
    return jobs


def reference_jobs(tasks: Iterable[Task]) -> list[VerificationJob]:
    """One job per task running its reference solution as it is (QHE's canonical_solution)."""
    jobs = []
    for task in tasks:
        if task.reference_solution is None:
            raise ValueError(f"task {task.task_id!r} has no reference solution to verify")
        jobs.append(VerificationJob(task, task.reference_solution, 0))
    return jobs


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logging.getLogger("qvr.verify").warning(message)


def needs_shared_try(split: Verdict) -> bool:
    """Whether a reference's split verdict is evidence that its task may need the shared mode.
    A split failure (a value no codec carries, in-place mutation, files, global RNG state ...) is,
    and so is a split pass that did not hold on every run of a stochastic reference (task 63 of
    QHE seeds numpy's generator in its tests: split, the candidate's own draws pass by chance);
    a timeout or a killed child is not: it says the machine was slow, not that the tests need the
    candidate's objects, and a task must never fall to the weaker mode because of load."""
    return split.status in ("failed", "error") or (split.pass_rate is not None and split.pass_rate < 1.0)


def calibrate_isolation(run: Callable[[list[VerificationJob]], list[Verdict]], tasks: list[Task],
                        noise: NoiseConfig | None = None) -> tuple[dict[str, str], list[Verdict]]:
    """Find once, by running each reference, which tasks need the shared mode: those whose
    reference fails split (see :func:`needs_shared_try`) but passes shared. ``run`` is any
    verifier's run honouring ``metadata.isolation``. Returns ({task_id: mode}, the reference
    verdicts in the mode chosen). The mode is then fixed per task: what a candidate returns
    never chooses it. The VerifierPool applies the same rule job by job.

    With ``noise``, a stochastic task's reference runs at least ``noise.reference_runs`` times and
    its pass rate is written into the task's metadata in place (``reference_pass_rate``; see
    actors/verify/noise/references.py): below 1, the reference is flaky."""

    def marked(mode: str) -> list[VerificationJob]:
        return [VerificationJob(replace(task, metadata={**task.metadata, "isolation": mode}), task.reference_solution,
                                runs_at_least=reference_runs(task, noise) if noise else 1) for task in tasks]

    verdicts = run(marked("split"))
    retry = [index for index, verdict in enumerate(verdicts) if needs_shared_try(verdict)]
    modes = {task.task_id: "split" for task in tasks}
    shared_jobs = marked("shared")
    for index, verdict in zip(retry, run([shared_jobs[index] for index in retry]) if retry else []):
        if verdict.status == "passed":
            modes[tasks[index].task_id] = "shared"
            verdicts[index] = verdict
    for task, verdict in zip(tasks, verdicts):
        mark_reference(task, verdict)
    return modes, verdicts


class Verifier:
    """Owns ``slots`` execution slots; use as a context manager (or call close())."""

    def __init__(self, config: VerifierConfig | None = None, slots: int | None = None,
                 executor: Literal["forked", "subprocess", "inprocess", "bare"] = "forked",
                 qpu_handler: Callable[..., dict] | None = None) -> None:
        """``qpu_handler``: answers the sandboxes' QPU requests (default, with ``qpu_gateway`` on: the
        cluster's gateway through Ray, :func:`~actors.verify.qpu.gateway.gateway_handler`)."""
        self.config = config or VerifierConfig()
        self.executor = executor
        load_plugins(self.config.sandbox.plugins)  # their harnesses, here too (a config unpickled in a worker)
        self.slots = slots or os.cpu_count() or 1
        self.servers: list[ForkServer] = []
        if self.executor != "subprocess":
            handler = qpu_handler or (gateway_handler(self.config.qpu) if self.config.qpu_gateway else None)
            # One zygote warms; the other slots' are forked from it (actors/verify/sandbox/clones.py).
            first = ForkServer(self.config, 0, self.executor, handler, clone_slots=range(1, self.slots))
            self.servers = [first, *first.clones]

    @property
    def features(self) -> list[str]:
        return self.servers[0].features if self.servers else []

    def verify(self, tasks: Iterable[Task], completions: Iterable[Completion]) -> list[Verdict]:
        """Verdicts in the order of ``completions``."""
        return self.run(pair_jobs(tasks, completions))

    def run(self, jobs: list[VerificationJob], isolation: str | None = None) -> list[Verdict]:
        verdicts: list[Verdict | None] = [None] * len(jobs)
        for index, verdict in self.stream(jobs, isolation):
            verdicts[index] = verdict
        return verdicts  # type: ignore[return-value]

    def calibrate(self, tasks: list[Task]) -> tuple[dict[str, str], list[Verdict]]:
        """:func:`calibrate_isolation` with this verifier (and its flaky-reference check)."""
        return calibrate_isolation(self.run, tasks, self.config.noise)

    def verify_one(self, job: VerificationJob, slot: int = 0, isolation: str | None = None) -> Verdict:
        """One job's verdict. A stochastic job's verdict that lies within the noise band is settled by
        running the job again in fresh children (:func:`~actors.verify.noise.settle.settle`); a QPU
        task's job goes through the tiers and is never re-measured."""
        if job.code is None:
            return no_code_verdict(job, self.config)
        if self.executor != "subprocess" and self.config.qpu_gateway and job.task.requires_qpu:
            return self._through_tiers(job, slot, "shared", {})
        if self.executor == "subprocess":
            def run_once() -> tuple[Verdict, object]:
                outcome, seconds = timed(run_subprocess, job, self.config)
                return make_verdict(job, outcome, self.config, seconds), outcome.get("record")
        else:
            mode = isolation or self.isolation_for(job.task)
            # Measures are taken by the split checker only (see sandbox/measures).
            wanted = requests(job.task, self.config.rewards.weights_for(job.task.family)) if mode == "split" else {}
            payload = job.payload(self.config.timeout_s, mode, False, wanted)

            def run_once() -> tuple[Verdict, object]:
                outcome, seconds = timed(self.servers[slot].run, payload, job.qpu_step)
                return make_verdict(job, outcome, self.config, seconds), outcome.get("record")
        return settle(job.task, job.code, run_once, self.config.noise, job.runs_at_least)

    def _through_tiers(self, job: VerificationJob, slot: int, mode: str, wanted: dict) -> Verdict:
        """A QPU task's job: in each simulator tier of ``verifier.tiers`` (cheapest first), then on the
        QPU. The first tier it does not pass decides its verdict (failed, timeout, error ...: only a
        pass goes on), which says that tier; one that passes them all is decided by the QPU (tier
        ``qpu``, as every QPU verdict is with no tiers set). The tier of each run is chosen here and
        sent in the job's control frame: a simulator tier's sandbox gets no channel to the gateway
        (sandbox/qpu_shim.py). ``duration_s`` adds up every run's seconds; QPU seconds and waits are
        the QPU run's (a tier spends none).

        Only candidates that pass go to the QPU, in GRPO, eval and verify alike, so a GRPO group
        whose candidates all fail a tier spends no QPU time and needs no rule of its own: its
        rewards are the tier's (equal where they fail alike: zero advantages, as the QPU's failures
        would give). A group whose candidates all pass goes to the QPU whole, since hardware noise
        can split candidates that a simulator cannot."""
        info = {"backends": list(self.config.qpu.backends), "least_busy": self.config.qpu.least_busy,
                "kind": self.config.qpu.backend_kind, "limits": {"max_circuits": self.config.qpu.limits.max_circuits,
                                                                 "max_shots": self.config.qpu.limits.max_shots}}
        spent = 0.0
        for tier in (*self.config.tiers, "qpu"):
            payload = job.payload(self.config.timeout_s, mode, True, wanted, qpu_tier=tier, qpu_info=info)
            outcome, seconds = timed(self.servers[slot].run, payload, job.qpu_step)
            spent += seconds
            verdict = make_verdict(job, outcome, self.config, spent, tier)
            if verdict.status != "passed":
                break
        return verdict

    def isolation_for(self, task: Task) -> str:
        """The task's mode: forced by config, else its metadata's, else split (forked executor only).
        Tasks served by the QPU gateway run shared (their sandbox's channel carries the jobs)."""
        if self.executor != "forked" or (self.config.qpu_gateway and task.requires_qpu):
            return "shared"
        wanted = self.config.isolation if self.config.isolation != "auto" else task.metadata.get("isolation", "split")
        if wanted == "split" and self.servers and not self.servers[0].can_split:
            _warn_once("split isolation is unavailable here (it needs root with user, mount and PID namespaces); "
                       "verifying in the shared mode")
            return "shared"
        return "shared" if wanted == "shared" else "split"

    def stream(self, jobs: list[VerificationJob], isolation: str | None = None) -> Iterator[tuple[int, Verdict]]:
        """(index, verdict) pairs as they finish."""
        todo: queue.SimpleQueue = queue.SimpleQueue()
        done: queue.SimpleQueue = queue.SimpleQueue()
        for item in enumerate(jobs):
            todo.put(item)

        def serve(slot: int) -> None:
            while True:
                try:
                    index, job = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    done.put((index, self.verify_one(job, slot, isolation)))
                except BaseException as error:  # noqa: BLE001 - surfaced to the caller below
                    done.put((index, error))

        threads = [threading.Thread(target=serve, args=(slot,), daemon=True)
                   for slot in range(min(self.slots, len(jobs)))]
        for thread in threads:
            thread.start()
        for _ in jobs:
            index, result = done.get()
            if isinstance(result, BaseException):
                raise result
            yield index, result
        for thread in threads:
            thread.join()

    def close(self) -> None:
        for server in self.servers:
            server.close()
        self.servers = []

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
