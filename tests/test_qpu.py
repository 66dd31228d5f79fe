"""The QPU gateway: limits that hold under concurrency, retries, clear errors, and a token that
never reaches a sandbox. (QHE's tasks that need IBM's service, passing through the gateway on fake
backends: tests/test_qhe.py, which calibrates QHE once for both.)

Evidence that the limits hold comes from the backend's side (a RecordingBackend's own record of
every submission it received, retries included), never from the gateway's history."""

import asyncio
import os
from pathlib import Path

import pytest

from actors.verify.qpu.config import QpuConfig
from actors.verify.qpu.errors import QpuError
from actors.verify.qpu.evidence import RecordingBackend, rate_under_backlog
from actors.verify.qpu.gateway import QpuGateway
from actors.verify.sandbox.codecs.registry import decode, encode
from tests.conftest import QPU_SAMPLER_PROGRAM, bell_pubs

pytestmark = pytest.mark.slow


async def run_callers(gateway, callers, jobs, pubs):
    async def caller(index, count):
        return [await gateway.run(f"caller-{index}", "ibm_manila", "sampler", pubs, {"shots": 64}) for _ in range(count)]

    shares = [jobs // callers + (1 if i < jobs % callers else 0) for i in range(callers)]
    return [answer for answers in await asyncio.gather(*(caller(i, n) for i, n in enumerate(shares))) for answer in answers]


def most_in_a_minute(times):
    """The most submissions that any rolling minute (any alignment) holds."""
    ordered = sorted(times)
    return max((sum(1 for t in ordered if start <= t < start + 60.0 - 1e-9) for start in ordered), default=0)


def most_pending(record):
    """The most submissions the backend held at once (each from its arrival to its end)."""
    return max((sum(1 for other in record if other.at <= s.at < other.end) for s in record), default=0)


def most_qpu_seconds_in_a_window(record, window_s):
    """The most QPU seconds of the runs that touch one rolling window (each counted whole)."""
    return max((sum(o.qpu_s for o in record if o.end >= s.end and o.at <= s.end + window_s) for s in record), default=0.0)


def test_backend_sees_every_submission_within_the_limits_with_retries():
    config = QpuConfig(time_scale=60, limits={"max_pending": 3, "jobs_per_minute": 30}, backoff_s=0.5, max_retries=12,
                       noise=False)
    backend = RecordingBackend(config, fail_probability=0.4, seed=7)  # transient failures, retried
    gateway = QpuGateway(config, runner=backend)
    answers = asyncio.run(run_callers(gateway, callers=16, jobs=60, pubs=bell_pubs()))
    assert len(answers) == 60 and gateway.report()["stats"]["completed"] == 60
    assert sum(decode(answers[0]["result"])[0].data.meas.get_counts().values()) == 64
    record = backend.submissions
    failed = sum(not s.ok for s in record)
    assert failed >= 25 and len(record) == 60 + failed  # every retry reached the backend, and only those
    times = [s.at for s in record]
    assert most_in_a_minute(times) <= 30, "a rolling minute at the backend held more submissions than allowed"
    assert most_pending(record) <= 3 and backend.max_pending["ibm_manila"] <= 3
    assert backend.violations(config.limits)["violations"] == 0  # what `qvr bench qpu` reports agrees
    # The limit holds on the recorded timestamps; how much of it is used under backlog is a speed
    # figure: `qvr bench qpu` reports it (utilisation).
    assert rate_under_backlog(times, gateway.report()["backlog"]["ibm_manila"]) <= 30 * 1.1


def test_qpu_seconds_per_window_hold_at_the_backend_with_retries():
    config = QpuConfig(time_scale=40, noise=False, backoff_s=0.5, max_retries=10, limits={
        "max_pending": 3, "jobs_per_minute": 600, "qpu_seconds_per_window": 10, "window_s": 12})
    backend = RecordingBackend(config, run_s=3, fail_every=3)  # 3 QPU seconds a run, failed ones too
    backend.inner.primitive("ibm_manila", "sampler")  # built before the clock matters
    gateway = QpuGateway(config, runner=backend)
    answers = asyncio.run(run_callers(gateway, callers=4, jobs=12, pubs=bell_pubs()))
    assert len(answers) == 12
    record = backend.submissions
    assert sum(not s.ok for s in record) >= 4 and sum(s.qpu_s for s in record) >= 45  # the budget binds many times
    most = most_qpu_seconds_in_a_window(record, 12)
    assert 6 <= most <= 10, f"{most:.2f} QPU seconds in one rolling window at the backend (allowed: 10)"
    assert backend.violations(config.limits)["violations"] == 0


def test_a_job_over_max_circuits_is_refused_before_the_backend():
    config = QpuConfig(time_scale=100, limits={"max_circuits": 2})
    backend = RecordingBackend(config)
    gateway = QpuGateway(config, runner=backend)
    circuit = decode(bell_pubs())[0]
    with pytest.raises(QpuError, match="at most 2 circuits .* this one has 3"):
        asyncio.run(gateway.run("c", "ibm_manila", "sampler", encode([circuit] * 3), {"shots": 8}))
    assert backend.submissions == [] and gateway.report()["stats"]["rejected"] == 1
    answer = asyncio.run(QpuGateway(config, runner=backend).run("c", "ibm_manila", "sampler", encode([circuit] * 2),
                                                                {"shots": 8}))
    assert len(decode(answer["result"])) == 2 and len(backend.submissions) == 1


def test_fair_across_callers():
    gateway = QpuGateway(QpuConfig(time_scale=200, limits={"max_pending": 1, "jobs_per_minute": 600}))
    pubs = bell_pubs()

    async def scenario():
        greedy = [asyncio.create_task(gateway.run("greedy", "ibm_manila", "sampler", pubs, {"shots": 8})) for _ in range(20)]
        await asyncio.sleep(0)  # one turn of the loop: each greedy task runs to its enqueue (run() awaits only after it)
        polite = asyncio.create_task(gateway.run("polite", "ibm_manila", "sampler", pubs, {"shots": 8}))
        await polite
        return sum(task.done() for task in greedy)

    finished_before_polite = asyncio.run(scenario())
    assert finished_before_polite <= 4, "round-robin must not let one caller's backlog starve another"


def test_always_failing_backend_and_oversized_jobs_give_clear_errors():
    gateway = QpuGateway(QpuConfig(always_fail=True, time_scale=100))
    with pytest.raises(QpuError, match="failed the job"):
        asyncio.run(gateway.run("c", "ibm_manila", "sampler", bell_pubs(), {}))
    gateway = QpuGateway(QpuConfig(limits={"max_shots": 100}))
    with pytest.raises(QpuError, match="at most 100 shots"):
        asyncio.run(gateway.run("c", "ibm_manila", "sampler", bell_pubs(), {"shots": 1000}))
    with pytest.raises(QpuError, match="not served"):
        asyncio.run(gateway.run("c", "ibm_nowhere", "sampler", bell_pubs(), {}))


def test_persistent_transient_errors_end_in_a_clear_error():
    gateway = QpuGateway(QpuConfig(transient_failure_every=1, max_retries=2, backoff_s=0.1, time_scale=100))
    with pytest.raises(QpuError, match="still failing after 3 tries"):
        asyncio.run(gateway.run("c", "ibm_manila", "sampler", bell_pubs(), {}))
    config = QpuConfig(max_retries=2, backoff_s=4, time_scale=100)
    backend = RecordingBackend(config, fail_every=1)
    with pytest.raises(QpuError, match="still failing after 3 tries"):
        asyncio.run(QpuGateway(config, runner=backend).run("c", "ibm_manila", "sampler", bell_pubs(), {}))
    times = [s.at for s in backend.submissions]
    assert len(times) == 3 and times[1] - times[0] >= 4 * 0.5 and times[2] - times[1] >= 8 * 0.5  # backoff, jittered


def test_sandbox_primitives_reach_the_gateway_with_their_wait_recorded(ray_session):
    from actors.contracts import Task
    from actors.verify.config import VerifierConfig
    from actors.verify.executor import VerificationJob
    from actors.verify.verifier import Verifier

    task = Task(task_id="qpu", family="test", harness="program", prompt="", tests="", requires_qpu=True)
    code = QPU_SAMPLER_PROGRAM + "assert len(service.jobs()) == 1\n"
    with Verifier(VerifierConfig(timeout_s=60), slots=1) as verifier:
        verdict = verifier.verify_one(VerificationJob(task, code))
    assert verdict.status == "passed", verdict.stderr_tail
    assert verdict.qpu_wait_s > 0


def test_token_never_reaches_a_sandbox(tmp_path):
    from actors.contracts import Task
    from actors.verify.config import VerifierConfig
    from actors.verify.executor import VerificationJob
    from actors.verify.verifier import Verifier

    token = "QVR-TOKEN-CANARY-91c2"
    token_file = Path("/var/tmp") / f"qvr-token-{os.getpid()}"
    token_file.write_text(token)
    os.environ["QVR_IBM_TOKEN"] = token
    try:
        config = VerifierConfig(qpu={"token_file": str(token_file)}, timeout_s=30)
        probe = ("import os, glob\nfound = []\n"
                 f"needle = {token[::-1]!r}[::-1]\n"  # the job itself must not carry the token into the zygote
                 "for path in glob.glob('/proc/*/environ') + ['/proc/self/environ']:\n"
                 "    try:\n        found += [path] if needle.encode() in open(path, 'rb').read() else []\n"
                 "    except OSError:\n        pass\n"
                 f"for path in [{str(token_file)!r}, os.path.expanduser('~/.qiskit/qiskit-ibm.json')]:\n"
                 "    try:\n        found += [path] if needle in open(path).read() else []\n"
                 "    except OSError:\n        pass\n"
                 "assert not found, found\n")
        task = Task(task_id="probe", family="test", harness="program", prompt="", tests="")
        with Verifier(config, slots=1) as verifier:
            verdict = verifier.verify_one(VerificationJob(task, probe))
            assert verdict.status == "passed", verdict.stderr_tail
            zygote = verifier.servers[0].pid
            assert token.encode() not in Path(f"/proc/{zygote}/environ").read_bytes()
            assert not _memory_contains(zygote, token.encode()), "the token must not be in the zygote's memory"
    finally:
        os.environ.pop("QVR_IBM_TOKEN", None)
        token_file.unlink(missing_ok=True)


def _memory_contains(pid: int, needle: bytes) -> bool:
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as memory:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
                continue
            start, end = (int(part, 16) for part in fields[0].split("-"))
            try:
                memory.seek(start)
                if needle in memory.read(end - start):
                    return True
            except (OSError, ValueError, OverflowError):
                continue
    return False
