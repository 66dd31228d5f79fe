import contextlib
import io
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
QHE_JSON = SHARED / "data" / "qhe" / "dataset_qiskit_test_human_eval.json"
EXAMPLES = ROOT / "pipelines" / "tasks" / "examples" / "qiskit-basics.jsonl"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# The verdict cache (actors/verify/cache): never the user's; a session's own for processes started
# outside a test (Ray's), each test's own inside it (cache_dir), so no test is answered by another's verdicts.
os.environ["QVR_CACHE_DIR"] = tempfile.mkdtemp(prefix="qvr-test-verdicts-")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory, monkeypatch) -> Path:
    """This test's verdict cache folder (empty at its start)."""
    folder = tmp_path_factory.mktemp("verdicts")
    monkeypatch.setenv("QVR_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def python() -> str:
    return sys.executable


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a qvr subprocess: this interpreter's bin dir first, offline hub."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.update(extra)
    return env


QPU_SAMPLER_PROGRAM = ("from qiskit import QuantumCircuit, transpile\n"
                       "from qiskit_ibm_runtime import QiskitRuntimeService, SamplerV2, Batch\n"
                       "service = QiskitRuntimeService()\nbackend = service.backend('ibm_manila')\n"
                       "qc = QuantumCircuit(2)\nqc.h(0)\nqc.cx(0, 1)\nqc.measure_all()\n"
                       "with Batch(backend=backend) as batch:\n"
                       "    sampler = SamplerV2(mode=batch)\n    sampler.options.default_shots = 100\n"
                       "    counts = sampler.run([transpile(qc, backend)]).result()[0].data.meas.get_counts()\n"
                       "assert sum(counts.values()) == 100, counts\n")
"""A candidate that samples a Bell circuit on an IBM backend through the runtime primitives (the
sandbox's shim sends it to the QPU gateway)."""


def bell_pubs():
    """A Bell circuit transpiled for FakeManilaV2, encoded as the QPU gateway receives its pubs."""
    from qiskit import QuantumCircuit, transpile
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    from actors.verify.sandbox.codecs.registry import encode

    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    return encode([transpile(circuit, FakeManilaV2(), seed_transpiler=1)])


def write_two_stage_recipe(path: Path, name: str) -> Path:
    """A recipe of two quick stages: synth (two tasks) -> verify of what synth wrote (by its output)."""
    import yaml

    path.write_text(yaml.safe_dump({"name": name, "stages": {
        "synth": {"job": "synth", "config": "configs/synth-smoke.yaml",
                  "overrides": ["spec.templates=[bell_state, ghz_state]", "spec.seeds_per_template=1"]},
        "check": {"job": "verify", "config": "configs/verify-quickstart.yaml",
                  "overrides": ["tasks.source={synth.output}", "pool.cpus_per_slot=0.5"]}}}, sort_keys=False))
    return path


# ---------------------------------------------------------------- one Ray, jobs in this process

TEST_RAY = {"num_cpus": 2, "include_dashboard": True, "namespace": "qvr-tests"}
"""The session's embedded Ray: 2 logical CPUs as the presets assume; the dashboard because Ray
Train's placement-group cleaner asks the state API, which it serves."""


@pytest.fixture(scope="module")
def ray_session():
    """The test session's one embedded Ray, started on first use and left up: jobs run in this
    process (:func:`run_qvr`) reuse it, and a job shuts down only a Ray it started. A test that
    needs a Ray of its own (a multi-node cluster) shuts this one down first (:func:`no_ray`); the
    next module that asks for it starts it again. After each module the QPU gateway (a named,
    detached actor: later users would get it with this module's limits) is removed."""
    import ray

    from pipelines.job import RayConfig, connect_ray

    if not ray.is_initialized():
        connect_ray(RayConfig(**TEST_RAY))
    yield ray
    if ray.is_initialized():
        from actors.verify.qpu.gateway import GATEWAY_NAME

        try:
            ray.kill(ray.get_actor(GATEWAY_NAME))
        except ValueError:
            pass  # no gateway was made


@pytest.fixture
def no_ray():
    """This process connected to no Ray (the session's is shut down; the next user restarts it)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    yield ray


@dataclass
class Finished:
    """A `qvr` run's exit status and what it printed."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def summary(self) -> dict:
        """The JSON object on the last line of standard output (``--json``)."""
        return json.loads(self.stdout.strip().splitlines()[-1])

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_qvr(*args: str) -> Finished:
    """``qvr ARGS`` in this process, from the project's root, on the session's Ray when the test
    asked for ``ray_session`` (else the job starts and stops its own). Tests that need a fresh
    process (a console's first lines, imports, a kill) run the ``qvr`` script instead."""
    import logging

    from pipelines import cli

    stdout, stderr, cwd = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = cli.main(list(args))
            except SystemExit as exit_:  # argparse's usage errors
                code = exit_.code if isinstance(exit_.code, int) else 2
    finally:
        os.chdir(cwd)
        root = logging.getLogger()
        for handler in [h for h in root.handlers if getattr(h, "qvr_console", False)]:
            root.removeHandler(handler)  # it writes to this call's captured stderr
        logging.captureWarnings(False)  # hand warnings back to whoever showed them before (pytest)
    return Finished(code, stdout.getvalue(), stderr.getvalue())


ONE_AFTER_ANOTHER = {
    "trainings": ("test_grpo", "test_offline", "test_ray_job_submit", "test_cluster_resources", "test_rollout",
                  "test_pairs", "test_embedded_ray", "test_pool_autoscaler"),
}
"""Units a test process runs whole, first, with several test processes (``make test
TEST_WORKERS=N``): the trainings (Ray Train with DeepSpeed, a vLLM engine, a killed run's own
Ray) and the modules that start Ray nodes of their own or serve a policy, one after another in
one process. Every other module is a unit of its own, taken by whichever process is free. Two of
them at once on two cores would make Ray's fixed 30 s wait for a raylet, or a timed calibration,
fail through no fault of the code (seen when GRPO ran beside the offline trainings); as one unit,
2 processes passed in 21.5 min where 3, splitting it in two, were slower still (docs/development.md)."""
UNIT_OF = {module: unit for unit, modules in ONE_AFTER_ANOTHER.items() for module in modules}


def _module(nodeid: str) -> str:
    return nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")


def _work_unit(nodeid: str) -> str:
    """The unit one test process takes whole: its module, or its group of ``ONE_AFTER_ANOTHER``."""
    return UNIT_OF.get(_module(nodeid), nodeid.split("::")[0])


def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's module-at-a-time scheduling with the units of ``ONE_AFTER_ANOTHER``. Written here
    because xdist's own ``xdist_group`` marks no longer group under pytest 9 (xdist rewrites a
    node id attribute that pytest 9 no longer reads)."""
    from xdist.scheduler import LoadScopeScheduling

    class ModulesAndTrainings(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _work_unit(nodeid)

    return ModulesAndTrainings(config, log)


def pytest_collection_modifyitems(config, items):
    """A test that uses the session's Ray (or shuts it down) is slow by definition: `-m "not slow"`
    (make test-quick) then starts no Ray in this process. In a test process of several (xdist)
    the units of ``ONE_AFTER_ANOTHER`` come first (the trainings first of all), so that the
    longest units start at once."""
    for item in items:
        if {"ray_session", "no_ray"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        order = list(ONE_AFTER_ANOTHER)
        items.sort(key=lambda item: order.index(UNIT_OF[_module(item.nodeid)]) if _module(item.nodeid) in UNIT_OF
                   else len(order))  # stable: modules keep their order within a unit
