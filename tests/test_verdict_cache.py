"""The verdict cache (actors/verify/cache): a key that changes with anything that decides a verdict,
only settled verdicts kept, and, through a real pool, repeats answered without reaching a worker,
identical jobs in flight run once, timeouts and random programs always run, and the store unseen
by the sandbox. What reached a worker is recorded by the worker itself, not by the pool."""

import collections
import json
import logging
import shutil
import sys
import sysconfig
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from actors.contracts import Task, Verdict, read_parquet
from actors.verify.cache import key as cache_key
from actors.verify.cache.cache import VerdictCache
from actors.verify.cache.config import CacheConfig
from actors.verify.cache.figures import cache_figures
from actors.verify.cache.key import cacheable, verdict_key
from actors.verify.cache.store import open_store
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.pool.config import PoolConfig
from actors.verify.pool.worker import VerifierWorker
from tests.conftest import run_qvr

SIM_TESTS = ("from qiskit_aer import AerSimulator\n"
             "def check(candidate):\n"
             "    counts = AerSimulator(method='statevector').run(candidate(), shots=1024).result().get_counts()\n"
             "    assert counts == {'11': 1024}\n")


def sim_task(tests: str = SIM_TESTS, task_id: str = "cache/x") -> Task:
    return Task(task_id=task_id, family="qhe", harness="qhe", prompt="def circuit():\n", tests=tests,
                entry_point="circuit")


BODY = ("    from qiskit import QuantumCircuit\n    qc = QuantumCircuit(2)\n    qc.x([0, 1])\n    qc.measure_all()\n"
        "    return qc\n")


def test_the_key_changes_with_everything_that_decides_a_verdict(monkeypatch, tmp_path):
    config = VerifierConfig()
    job = VerificationJob(sim_task(), BODY, 0)
    key = verdict_key(job, config)
    assert verdict_key(VerificationJob(sim_task(task_id="cache/other-id"), BODY, 7), config) == key  # ids do not decide
    bookkeeping = replace(sim_task(), metadata={"template": "bell_state", "seed": 12, "mutants_killed": 3})
    assert verdict_key(VerificationJob(bookkeeping, BODY, 0), config) == key
    assert verdict_key(replace(job, text="```python\n" + BODY + "```"), config) != key  # form rewards read the text
    variants = {
        "one character of the tests": sim_task(SIM_TESTS.replace("1024}", "1023}")),
        "the backend": sim_task(SIM_TESTS.replace("'statevector'", "'matrix_product_state'")),
        "the shots": sim_task(SIM_TESTS.replace("shots=1024", "shots=2048")),
        "the harness": replace(sim_task(), harness="qhe_hard"),
        "the family (its reward weights)": replace(sim_task(), family="synthetic"),
        "the isolation mode": replace(sim_task(), metadata={"isolation": "shared"}),
    }
    for what, task in variants.items():
        assert verdict_key(VerificationJob(task, BODY, 0), config) != key, what
    fidelity = VerifierConfig(rewards={"weights": {"pass_fraction": 1.0, "qspark_fidelity": 1.0}})
    named = replace(sim_task(), metadata={"circuit": "other"})  # the measure's target, read by qspark_fidelity
    assert verdict_key(VerificationJob(named, BODY, 0), fidelity) != verdict_key(job, fidelity)
    assert verdict_key(replace(job, code=BODY.replace("x([0, 1])", "x([1, 0])")), config) != key
    assert verdict_key(job, VerifierConfig(timeout_s=30)) != key
    assert verdict_key(job, VerifierConfig(rewards={"weights": {"pass_fraction": 1.0, "format": 0.2}})) != key
    assert verdict_key(job, VerifierConfig(huge_pages=False, sandbox={"hidden_paths": ["/elsewhere"]})) == key

    cache_key.fingerprint.cache_clear()
    monkeypatch.setattr(cache_key, "_version", lambda library: "9.9" if library == "qiskit-aer" else "1.0")
    assert verdict_key(job, config) != key, "another qiskit-aer"
    cache_key.fingerprint.cache_clear()
    monkeypatch.undo()
    assert verdict_key(job, config) == key
    copy = tmp_path / "actors"  # the deciding code, one harness changed by a comment
    shutil.copytree(cache_key.ACTORS / "verify", copy / "verify")
    shutil.copy(cache_key.ACTORS / "contracts.py", copy / "contracts.py")
    harness = copy / "verify" / "sandbox" / "harnesses" / "qhe.py"
    harness.write_text(harness.read_text() + "\n# changed\n")
    monkeypatch.setattr(cache_key, "ACTORS", copy)
    cache_key.fingerprint.cache_clear()
    assert verdict_key(job, config) != key, "the verifier's code changed"
    cache_key.fingerprint.cache_clear()

def test_only_programs_that_cannot_vary_are_kept():
    assert cacheable(VerificationJob(sim_task(), BODY, 0))
    noisy = sim_task(SIM_TESTS.replace("AerSimulator(method='statevector')", "AerSimulator.from_backend(FakeManilaV2())"))
    assert not cacheable(VerificationJob(noisy, BODY, 0))
    assert not cacheable(VerificationJob(replace(sim_task(), requires_qpu=True), BODY, 0))
    assert not cacheable(VerificationJob(sim_task(), "    import random\n" + BODY, 0))


def verdict(status: str, **fields) -> Verdict:
    return Verdict(task_id="t", sample_idx=3, status=status, tests_passed=1, tests_total=1, reward=1.0,
                   duration_s=2.5, **fields)


def test_settled_verdicts_are_kept_and_timeouts_kills_and_errors_are_not(tmp_path):
    cache = VerdictCache(CacheConfig(path=str(tmp_path / "v.sqlite")), VerifierConfig())
    job = VerificationJob(sim_task(task_id="asked/again"), BODY, 5)
    for status in ("timeout", "killed", "error"):
        cache.remember(status, verdict(status))
        assert cache.lookup(status, job) is None, status
    cache.remember("k", verdict("passed", outcomes={"a": "passed"}, measures={"m": 0.5}))
    answer = cache.lookup("k", job)
    assert (answer.task_id, answer.sample_idx, answer.cached) == ("asked/again", 5, True)
    assert (answer.status, answer.outcomes, answer.measures, answer.duration_s) == ("passed", {"a": "passed"}, {"m": 0.5}, 2.5)
    cache.close()
    again = VerdictCache(CacheConfig(path=str(tmp_path / "v.sqlite")), VerifierConfig())  # another process, a later run
    assert again.lookup("k", job).status == "passed" and again.hits == 1


def test_a_store_that_cannot_be_opened_is_reported_and_verification_goes_on(tmp_path, caplog):
    (tmp_path / "taken").mkdir()
    with caplog.at_level(logging.WARNING, logger="qvr.cache"):
        assert open_store(tmp_path / "taken") is None
    assert "verifying without it" in caplog.text


# ---------------------------------------------------------------- through a real pool


@pytest.fixture
def recorder(ray_session):
    """A named actor the workers tell what they were given."""

    @ray_session.remote(num_cpus=0)
    class Recorder:
        def __init__(self):
            self.codes = []

        def add(self, codes):
            self.codes += codes

        def take(self):
            codes, self.codes = self.codes, []
            return collections.Counter(codes)

    actor = Recorder.options(name="cache-test-recorder", namespace="qvr-tests").remote()
    yield actor
    ray_session.kill(actor)


def recording_worker() -> type:
    """A worker that tells the recorder each job's code (defined here: Ray ships it by value)."""

    class RecordingWorker(VerifierWorker):
        def verify_batch(self, keys, jobs):
            import ray

            ray.get(ray.get_actor("cache-test-recorder", namespace="qvr-tests").add.remote([job.code for job in jobs]))
            return super().verify_batch(keys, jobs)

    return RecordingWorker


def program(task_id: str, code: str, index: int = 0) -> VerificationJob:
    return VerificationJob(Task(task_id=task_id, family="test", harness="program", prompt="", tests=""), code, index)


PASSES, FAILS = "x = sum(range(10))\nassert x == 45\n", "assert 2 + 2 == 5\n"
TWIN, LOOPS = "import math\nassert math.isqrt(49) == 7\n", "while True:\n    pass\n"
RANDOM = "import random\nassert random.random() < 2\n"


def test_repeats_are_answered_without_a_worker_twins_run_once_and_timeouts_run_again(tmp_path, recorder):
    import ray

    from actors.verify.pool.pool import VerifierPool

    # The store where a sandbox shows files (among the interpreter's packages): the pool must hide it.
    folder = Path(tempfile.mkdtemp(prefix="qvr-test-cache-", dir=sysconfig.get_paths()["purelib"]))
    folder.chmod(0o755)  # readable by the sandbox's user, as a user's own folder would be
    store = folder / "verdicts.sqlite"
    beside = Path(sys.executable).resolve()  # shown to every sandbox: the control
    looks = [program("c/look", f"import os\nassert os.path.exists({str(store)!r})\n"),
             program("c/control", f"import os\nassert os.path.exists({str(beside)!r})\n")]
    jobs = [program("c/pass", PASSES), program("c/fail", FAILS), *[program("c/twin", TWIN, i) for i in range(4)],
            program("c/loop", LOOPS), program("c/random", RANDOM)]
    pool = VerifierPool(VerifierConfig(timeout_s=3), PoolConfig(workers=1, slots_per_worker=2, cpus_per_slot=0.5,
                        cache=CacheConfig(path=str(store))), worker_class=recording_worker())

    def run(batch):
        verdicts = pool.run(batch)
        return verdicts, ray.get(recorder.take.remote()), cache_figures(verdicts)

    try:
        seen, _, _ = run(looks)
        assert store.exists() and [v.status for v in seen] == ["failed", "passed"], [v.stderr_tail for v in seen]

        first, received, figures = run(jobs)
        assert [v.status for v in first] == ["passed", "failed", *["passed"] * 4, "timeout", "passed"]
        assert received == {PASSES: 1, FAILS: 1, TWIN: 1, LOOPS: 1, RANDOM: 1}, "four twins in flight at once run once"
        twins = first[2:6]
        assert sum(v.cached for v in twins) == 3 and [v.sample_idx for v in twins] == [0, 1, 2, 3]
        assert len({(v.status, v.tests_passed, v.reward) for v in twins}) == 1
        assert figures["cache_hits"] == 3

        second, received, figures = run(jobs)
        assert received == {LOOPS: 1, RANDOM: 1}, "only what is never kept reaches a worker again"
        assert [v.cached for v in second] == [True] * 6 + [False, False]
        for before, after in zip(first[:6], second[:6]):
            assert replace(after, cached=before.cached, duration_s=before.duration_s) == before
        assert figures["cache_hits"] == 6 and figures["cache_saved_s"] > 0
        assert pool.cache_figures()["cache_hits"] == 9  # the pool's own count, over both calls

        changed = replace(jobs[0], task=replace(jobs[0].task, tests="# one more character"))
        _, received, _ = run([changed])
        assert received == {PASSES: 1}, "other tests: a miss"
    finally:
        pool.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_qvr_verify_twice_answers_the_second_run_from_the_cache(tmp_path, ray_session):
    tasks = tmp_path / "tasks" / "three.jsonl"
    tasks.parent.mkdir()
    rows = [{"task_id": f"t/{i}", "family": "test", "harness": "program", "prompt": "", "tests": "",
             "reference_solution": f"assert sum(range({i})) == {sum(range(i))}\n"} for i in range(3)]
    tasks.write_text("".join(json.dumps(row) + "\n" for row in rows))
    args = ("verify", "--tasks", str(tasks), "--canonical", "pool.cpus_per_slot=0.5", f"run.root={tmp_path / 'runs'}",
            "--json")
    first, second = run_qvr(*args), run_qvr(*args)
    assert first.returncode == second.returncode == 0, second.stderr[-3000:]
    assert first.summary["cache_hits"] == 0 and first.summary["passed"] == 3
    assert second.summary["cache_hits"] == 3 and second.summary["cache_hit_rate"] == 1.0
    assert "verdict cache: 3 answered without running (100%)" in second.stdout
    before, after = (read_parquet(Verdict, run.summary["verdicts"]) for run in (first, second))
    assert [replace(v, cached=False, duration_s=0) for v in after] == [replace(v, duration_s=0) for v in before]
    assert all(v.cached for v in after)
