"""QPU budgets: how many QPU seconds a run, and each of its training steps, may spend
(``verifier.qpu.budget_s``, ``budget_per_step_s``), the gateway's ledger of what each has spent,
and the parent's record of what the gateway answered one verification job.

**Who pays.** Every submission carries a :class:`BudgetScope`: its run (``qpu.run_id``, which the
job sets to its run directory), its training step where the job has one (GRPO's producer sets
``VerificationJob.qpu_step``) and the limits of the caller's config. The gateway is one actor for
the whole cluster, so the ledger is keyed by run, not by gateway.

**When it stops.** Before a job's submission (a first try or a retry) is handed to the backend,
the gateway asks :meth:`BudgetLedger.decide` with an estimate of the job's QPU seconds (the longest
recent run on that backend, the same reservation as the rolling window's). If what the run (or the
step) has spent plus the estimate is over its budget, the job is refused: jobs in flight can only
add to what is spent, so it would never fit. If it fits only provided the run's jobs in flight end
within their estimates, it waits for them (while no run's length is known yet, a run has one job
at the backend at a time). Otherwise it goes. QPU seconds are the gateway's measure of each
submission (failed tries included), so a run stops at its budget unless a job runs far longer than
the recent ones did.

**Why the status cannot be forged.** The refusal is a typed error
(:class:`~actors.verify.qpu.errors.QpuBudgetExceeded`) that the gateway raises to the verifier's
parent process, which asked it on the sandbox's behalf (actors/verify/forkserver.py). The parent
writes it into its own :class:`QpuUse` for the job, beside the QPU seconds the gateway reported,
and only that record makes a verdict ``over_budget`` (actors/verify/executor.py,
``make_verdict``). The sandboxed code runs in shared isolation for QPU tasks and sees the
refusal only as an exception text: whatever it prints, raises, or writes into its result record
is read as the candidate's output, never as the gateway's word. Nor can a candidate earn the
status: the gateway refuses only once the run's budget is spent (a candidate that spends it with
submissions of its own ends the run's QPU work for every job, which ``qvr`` reports, and gains
nothing: an ``over_budget`` sample is not trained on). Once a job has been refused, its verdict is
``over_budget`` whatever the code did next (catching the error and passing included): its tests
did not see the QPU's answer.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Literal

Decision = Literal["go", "hold", "refuse"]


@dataclasses.dataclass(frozen=True)
class BudgetScope:
    """Whom a submission is billed to, with the limits its caller's config sets (None: no limit)."""

    run: str = ""
    step: int | None = None
    run_budget_s: float | None = None
    step_budget_s: float | None = None

    def accounts(self) -> list[tuple[tuple, float | None]]:
        """(ledger key, its budget) for the run and, where the job has one, its step."""
        accounts: list[tuple[tuple, float | None]] = [(("run", self.run), self.run_budget_s)]
        if self.step is not None:
            accounts.append((("step", self.run, self.step), self.step_budget_s))
        return accounts


class BudgetLedger:
    """The gateway's record, per run and per (run, step): QPU seconds spent and submissions in
    flight. Single event loop (the gateway's): no locks needed."""

    def __init__(self) -> None:
        self.spent: collections.Counter[tuple] = collections.Counter()
        self.in_flight: collections.Counter[tuple] = collections.Counter()

    def decide(self, scope: BudgetScope, estimate: float | None) -> tuple[Decision, str]:
        """Whether a submission of ``scope`` that is expected to use ``estimate`` QPU seconds (None:
        not known yet) may start now, must wait for the scope's submissions in flight, or never fits;
        with why, when it is refused."""
        decision: Decision = "go"
        for key, budget in scope.accounts():
            if budget is None:
                continue
            spent = self.spent[key]
            if spent >= budget or spent + (estimate or 0.0) > budget + 1e-9:
                what = f"run {scope.run!r}" if key[0] == "run" else f"step {scope.step} of run {scope.run!r}"
                return "refuse", (f"QPU budget spent: {what} has used {spent:.1f} of its {budget:g} QPU seconds, "
                                  f"and a job is reserved {estimate or 0.0:.1f}")
            flying = self.in_flight[key]
            if flying and (estimate is None or spent + estimate * (flying + 1) > budget + 1e-9):
                decision = "hold"
        return decision, ""

    def start(self, scope: BudgetScope) -> None:
        for key, _ in scope.accounts():
            self.in_flight[key] += 1

    def spend(self, scope: BudgetScope, seconds: float) -> None:
        for key, _ in scope.accounts():
            self.spent[key] += seconds

    def end(self, scope: BudgetScope) -> None:
        for key, _ in scope.accounts():
            self.in_flight[key] -= 1

    def report(self) -> dict[str, Any]:
        """QPU seconds spent per run and per ``run#step``."""
        return {"runs": {key[1]: round(seconds, 3) for key, seconds in self.spent.items() if key[0] == "run"},
                "steps": {f"{key[1]}#{key[2]}": round(seconds, 3) for key, seconds in self.spent.items()
                          if key[0] == "step"}}


@dataclasses.dataclass
class QpuUse:
    """What the gateway answered one verification job, as the verifier's parent saw it: the QPU
    seconds its submissions used and the budget's refusal, if one came. Kept in the parent, never
    read from the sandbox (see the module docstring)."""

    qpu_s: float = 0.0
    refused: str | None = None

    def add(self, answer: Any) -> None:
        """A successful answer's QPU seconds (the gateway's figure)."""
        if isinstance(answer, dict):
            self.qpu_s += float(answer.get("qpu_s") or 0.0)

    def failed(self, error: BaseException) -> None:
        """A refused or failed job: its tries' QPU seconds, and the refusal."""
        from actors.verify.qpu.errors import QpuBudgetExceeded

        self.qpu_s += float(getattr(error, "qpu_s", 0.0) or 0.0)
        if isinstance(error, QpuBudgetExceeded) and self.refused is None:
            self.refused = str(error)

    def outcome(self, outcome: dict[str, Any]) -> dict[str, Any]:
        """The job's outcome with the parent's QPU figures (``qpu_s``; ``over_budget``: the refusal)."""
        return {**outcome, "qpu_s": self.qpu_s, **({"over_budget": self.refused} if self.refused else {})}
