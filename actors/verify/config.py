"""VerifierConfig: how completions are executed and judged. It composes the configs of the parts
it drives: the sandbox's (SandboxConfig), the rewards' (RewardConfig), the QPU gateway's (QpuConfig)
and the settling of noisy verdicts (NoiseConfig)."""

from typing import Literal

from pydantic import Field, field_validator

from actors.config import Config
from actors.verify.noise.config import NoiseConfig
from actors.verify.qpu.config import QpuConfig
from actors.verify.rewards.config import RewardConfig
from actors.verify.sandbox.config import SandboxConfig


class VerifierConfig(Config):
    isolation: Literal["auto", "split", "shared"] = "auto"
    """Where the tests run. ``split``: in a clean checker child, the candidate's values crossing
    as data (a policy cannot forge a pass by patching Aer or unittest or returning always-equal
    objects). ``shared``: in the child that ran the candidate. ``auto``: per task, from its
    metadata ``isolation`` (found once by running the reference; see calibrate_isolation),
    ``split`` where unmarked. Chosen per task, never by what a candidate returns, so a policy
    cannot pick the weaker mode."""

    timeout_s: float = Field(60.0, gt=0, le=3600)
    """Wall-clock seconds one verification may take before it is killed (status ``timeout``).
    Qiskit HumanEval's own harness uses 30 s, but its task 100 needs about 40 s on a 2-core
    machine: 60 s is the smallest budget under which every offline-passing QHE task passes."""

    python: str | None = None
    """Interpreter for zygotes and subprocesses; default: the one running qvr."""

    huge_pages: bool = True
    """Back each zygote's heap with transparent huge pages (glibc's ``malloc.hugetlb`` tunable,
    then ``MADV_COLLAPSE`` once the zygote is set up): about 140 of its ~200 MB then fork as a
    few dozen huge-page entries, and a fork copies (and a child's exit unmaps) ~20k page-table
    entries instead of ~50k, while copy-on-write stays per 4 KiB page. Measured on
    the bench's small workload: about a sixth less CPU per verification. Harmless where THP is
    off. See the kernel's transhuge.rst (MADV_COLLAPSE, Linux 6.1)."""

    warm_backends: list[str] = ["FakeManilaV2", "FakeQuitoV2", "FakeLimaV2", "FakeBelemV2"]
    """qiskit_ibm_runtime fake backends (class names) each zygote builds, Target included, before
    it forks: a split checker then rebuilds a backend that crossed by name at no cost instead of
    parsing its calibration data again (~9 ms for 5 qubits, seconds for 127). Defaults: those the
    synthetic templates use; add the ones your tasks name."""

    sandbox: SandboxConfig = SandboxConfig()
    """Isolation and limits of each verification child."""

    rewards: RewardConfig = RewardConfig()
    """How a verdict becomes a reward."""

    qpu_gateway: bool = True
    """Serve tasks with ``requires_qpu`` through the QPU gateway: inside their sandbox,
    QiskitRuntimeService and the runtime primitives talk to the gateway (fake backends by
    default). Such tasks run in the shared isolation mode."""

    qpu: QpuConfig = QpuConfig()
    """The gateway's backends and limits (used by whichever verifier creates it first)."""

    noise: NoiseConfig = NoiseConfig()
    """Shot-noise-aware verdicts: a stochastic job (noisy backend, noise model, randomness; never a
    QPU task) whose verdict may be another draw is run again until its pass probability is settled,
    and stochastic references are run k times at calibration, flagged unless they pass k of k
    (docs/verification.md, "Noise-aware verdicts")."""

    tiers: list[Literal["ideal", "noisy"]] = []
    """Cheaper simulators a task served by the QPU gateway runs on first, cheapest first; empty:
    straight to the QPU. ``ideal``: its runtime primitives (``SamplerV2``/``EstimatorV2`` on an IBM
    backend) are served inside the sandbox by Aer's ideal simulator; ``noisy``: by Aer with the
    backend's noise model (the fake backend that stands in for it), also in the sandbox. Neither
    reaches the gateway nor spends QPU seconds or budget. A candidate that does not pass a tier
    stops there: that verdict (its status and reward, ``tier`` naming the tier) is final, since
    code that fails a simulator is taken not to pass on hardware; only candidates that pass every
    tier go to the QPU, whose verdict decides (``tier: qpu``). In GRPO a group whose candidates
    all fail a tier spends no QPU time, and one whose candidates all pass still goes to the QPU,
    whose noise can split them. Real QPU time is scarce (IBM's open plan: 10 minutes a month),
    and a wrong candidate costs as much of it as a right one. Every pass costs the candidate one
    more sandbox run; a tier can only fail a candidate, never pass it, so telling the tiers apart
    wins a candidate nothing. The parent chooses the tier of each run, never the candidate's code
    (docs/verification.md, "Cheaper simulators before the QPU")."""

    @field_validator("tiers")
    @classmethod
    def _cheapest_first(cls, tiers: list[str]) -> list[str]:
        order = ["ideal", "noisy"]
        if len(set(tiers)) != len(tiers) or tiers != sorted(tiers, key=order.index):
            raise ValueError(f"tiers run cheapest first, each once (a subsequence of {order}); got {tiers}")
        return tiers
