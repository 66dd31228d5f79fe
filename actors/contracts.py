"""The data contracts (docs/architecture.md): Task, Completion, Verdict.

Plain dataclasses in memory; Arrow/Parquet on disk through :func:`to_table` / :func:`from_table`.
JSON-valued fields (``metadata``, ``reward_parts``, ``outcomes``, ``measures``, ``provenance``) are
dicts in memory and JSON strings on disk, so the Parquet schema stays flat and readable by any tool.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

Status = Literal["passed", "failed", "error", "timeout", "killed", "over_budget"]
STATUSES: tuple[str, ...] = ("passed", "failed", "error", "timeout", "killed", "over_budget")

UNJUDGED: tuple[str, ...] = ("over_budget",)
"""Statuses of verdicts that judge nothing. ``over_budget``: the QPU gateway refused one of the
job's submissions because its run (or its training step) had spent its QPU budget
(``verifier.qpu.budget_s``, ``budget_per_step_s``), so the code never ran to its end, through no
fault of its own. The refusal is the gateway's word, seen by the verifier's parent, never text
from the sandbox (actors/verify/qpu/budget.py). No reward scores such a verdict (``reward`` 0.0
means nothing, ``reward_parts`` is empty); GRPO leaves it out of the loss and of its group's
statistics, evaluations count it apart from passes and failures."""


@dataclass
class Task:
    """One prompt with its hidden tests.

    ``harness`` says how tests run: a name in the harness registry
    (actors/verify/sandbox/harnesses: ``qhe``: prompt + completion + test, then
    ``check(entry_point)``; ``qhe_hard``: the whole program, then ``check(entry_point)``;
    ``unittest``: program + a TestCase class; ``program``: must run cleanly; ``qasm``: an
    OpenQASM 3 program scored by QUASAR's measures, ``tests`` holding the ground truth as JSON).
    """

    task_id: str
    family: str
    harness: str
    prompt: str
    tests: str
    entry_point: str | None = None
    reference_solution: str | None = None
    requires_qpu: bool = False
    difficulty: str | None = None
    area: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from actors.verify.sandbox.harnesses.registry import HARNESSES

        if self.harness not in HARNESSES:
            raise ValueError(f"task {self.task_id!r}: harness {self.harness!r} is not one of {sorted(HARNESSES)}")
        if HARNESSES[self.harness].needs_entry_point and not self.entry_point:
            raise ValueError(f"task {self.task_id!r}: harness {self.harness!r} needs an entry_point")


@dataclass
class Completion:
    """One sampled answer to a task."""

    task_id: str
    sample_idx: int
    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    policy_version: int = 0
    finish_reason: str = "stop"


@dataclass
class Verdict:
    """What the verifier concluded about one completion."""

    task_id: str
    sample_idx: int
    status: str
    tests_passed: int
    tests_total: int
    reward: float
    reward_parts: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    """Test id -> passed | failed | error | skipped, as the checker recorded them."""
    measures: dict[str, float] = field(default_factory=dict)
    """Named numbers the checker computed (graded rewards read them), e.g. a JS distance."""
    isolation: str = "shared"
    duration_s: float = 0.0
    qpu_wait_s: float = 0.0
    qpu_s: float = 0.0
    """QPU seconds the job's submissions used at the backend (every try, failed ones too), as the
    gateway billed them to its run. 0.0 in files written before the field existed."""
    stderr_tail: str = ""
    cached: bool = False
    """Answered by the verdict cache (actors/verify/cache), not run again: a kept verdict of the
    same program, tests, settings and verifier code, or an identical job's that ran at the same
    time. ``duration_s`` is then the seconds that run took (what the answer saved)."""
    tier: str = ""
    """Where the primitives of the run that decided it ran, for a task served by the QPU gateway
    (``requires_qpu``): ``ideal`` or ``noisy`` (a simulator tier of ``verifier.tiers`` that the
    code failed, so it never reached the QPU) or ``qpu`` (the gateway's backend decided). ``""``:
    no QPU tier applies (a task without the QPU, or no code ran), and in files written before the
    field existed. Set by the verifier's parent, never read from the sandbox
    (actors/verify/verifier.py)."""
    runs: int = 1
    """Runs of the job this verdict settles (actors/verify/noise): above 1 where a stochastic job's
    verdict lay within the noise band (it passed, or failed by an assertion) and was re-measured
    in fresh sandbox children. The other fields are those of a run with the settled status (its
    reward, or the runs' mean under ``verifier.noise.reward: probability``); ``duration_s`` adds
    up every run's seconds. 1 in files written before the field existed."""
    pass_rate: float | None = None
    """Passes / runs where the verdict was re-measured (``runs`` > 1, or a stochastic reference's
    k runs at calibration); None where one run decided."""
    settled: bool = False
    """The Clopper-Pearson interval of the pass probability (``verifier.noise.confidence``) lies
    wholly above or below ``verifier.noise.threshold``. False where the budget ran out first (the
    status is then the pass rate against the threshold) and where it was not re-measured."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """Which simulator runs the code made, as the sandbox recorded them (the child that wrote the
    result record: in split mode the checker's runs, not those inside the candidate's functions):
    ``{"runs": [{"backend", "noise" (a noise model was set), "shots", "seed" (None: unseeded)}, ...
    at most 16], "total": every run}``; ``{}`` where none ran. Checked field by field in the parent
    (actors/verify/noise/provenance.py); informational: it never changes a reward and never reaches
    the policy."""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"verdict status {self.status!r} is not one of {STATUSES}")

    @property
    def judged(self) -> bool:
        """Whether the verdict judges the code (its status is not one of :data:`UNJUDGED`)."""
        return self.status not in UNJUDGED


_JSON_FIELDS = {"metadata", "reward_parts", "outcomes", "measures", "provenance"}
Record = TypeVar("Record", Task, Completion, Verdict)


def to_rows(records: list[Task] | list[Completion] | list[Verdict]) -> list[dict[str, Any]]:
    """Flat rows (JSON fields as strings), as written to Parquet."""
    rows = []
    for record in records:
        row = dataclasses.asdict(record)
        for name in _JSON_FIELDS & row.keys():
            row[name] = json.dumps(row[name], sort_keys=True)
        rows.append(row)
    return rows


def from_row(cls: type[Record], row: dict[str, Any]) -> Record:
    """Rebuild a record from a flat row; unknown columns are an error, missing optional ones default."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(row) - names
    if unknown:
        raise ValueError(f"{cls.__name__} row has unknown columns {sorted(unknown)}; known: {sorted(names)}")
    values = dict(row)
    for name in _JSON_FIELDS & values.keys():
        if isinstance(values[name], str):
            values[name] = json.loads(values[name]) if values[name] else {}
        elif values[name] is None:
            values[name] = {}
    return cls(**values)


def write_parquet(records: list[Task] | list[Completion] | list[Verdict], path: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not records:
        raise ValueError(f"refusing to write an empty Parquet file to {path}")
    pq.write_table(pa.Table.from_pylist(to_rows(records)), path)


def read_parquet(cls: type[Record], path: str) -> list[Record]:
    import pyarrow.parquet as pq

    return [from_row(cls, row) for row in pq.read_table(path).to_pylist()]
