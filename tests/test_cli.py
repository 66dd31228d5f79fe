"""The `qvr` command line as a user runs it: help, a real job, JSON on the last line, exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from actors.contracts import Verdict, read_parquet
from pipelines.jobs import JOBS
from tests.conftest import EXAMPLES, ROOT, child_env, run_qvr


def qvr(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "qvr"
    return subprocess.run([str(script), *args], cwd=ROOT, env=child_env(), capture_output=True, text=True,
                          timeout=timeout)


def test_help_lists_every_job_with_one_line():
    result = qvr("--help")
    assert result.returncode == 0
    for job in JOBS:
        line = next(line for line in result.stdout.splitlines() if line.strip().startswith(job + " "))
        assert len(line.split(None, 1)[1]) > 10
    assert "config" in result.stdout


def test_python_dash_m_pipelines_is_the_same_cli():
    result = subprocess.run([sys.executable, "-m", "pipelines", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and "verify" in result.stdout


HEAVY = ("torch", "ray", "qiskit", "qiskit_aer", "qiskit_ibm_runtime", "transformers", "vllm", "deepspeed")
_IMPORTED = """
import json, runpy, sys
sys.argv = ["qvr", *sys.argv[1:]]
try:
    runpy.run_module("pipelines", run_name="__main__", alter_sys=True)
except SystemExit as exit:
    status = exit.code
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY))
jobs = sorted(name for name in sys.modules if name in JOB_MODULES)
print("\\nIMPORTED " + json.dumps({"status": status, "heavy": heavy, "jobs": jobs}))
"""


def _heavy_imports(*args: str) -> tuple[int, list[str], list[str], str]:
    """Run `python -m pipelines ARGS` in a fresh interpreter: its exit status, the heavy packages and
    the job modules it imported, and its stderr."""
    script = f"HEAVY = {HEAVY!r}\nJOB_MODULES = {[job.module for job in JOBS.values()]!r}\n{_IMPORTED}"
    result = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env=child_env(), capture_output=True,
                            text=True, timeout=120)
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("IMPORTED "), result.stdout + result.stderr
    report = json.loads(last.removeprefix("IMPORTED "))
    return report["status"], report["heavy"], report["jobs"], result.stderr


@pytest.mark.parametrize("args", [
    ["--help"],
    *[[job, "--help"] for job in JOBS],
    *[[job, "ray.num_cpus=0"] for job in JOBS],  # a config error: a value out of range
    ["verify", "verifier.timeout_s=-1"],
    *[["config", "show", job, "ray.num_cpus=0"] for job in JOBS],
], ids=" ".join)
def test_help_and_config_errors_import_no_heavy_package(args):
    """`qvr --help`, `qvr JOB --help` and a config error answer at once: building the parser imports
    no job module but the chosen one, and job and config modules import ray, torch, qiskit,
    transformers, vllm and deepspeed only inside the functions that use them."""
    status, heavy, jobs, stderr = _heavy_imports(*args)
    if "--help" in args:
        assert status == 0, stderr
    else:
        assert status == 2 and "qvr: config error" in stderr, stderr
    assert heavy == [], f"`qvr {' '.join(args)}` imported {heavy}"
    chosen = [JOBS[arg].module for arg in args if arg in JOBS]
    assert jobs == chosen, f"`qvr {' '.join(args)}` imported the job modules {jobs}"


@pytest.mark.slow
def test_verify_job_end_to_end(tmp_path, ray_session):
    completions = tmp_path / "completions.jsonl"
    completions.write_text("\n".join(json.dumps(row) for row in [
        {"task_id": "examples/bell-state",
         "completion": "from qiskit import QuantumCircuit\nqc = QuantumCircuit(2)\nqc.h(0)\nqc.cx(0, 1)\n"},
        {"task_id": "examples/bell-state", "completion": "from qiskit import QuantumCircuit\nqc = QuantumCircuit(2)\n"},
        {"task_id": "examples/ghz-function", "completion": "    return QuantumCircuit(n)\n"},
    ]) + "\n")
    result = run_qvr("verify", "--config", "configs/verify-quickstart.yaml", "--completions", str(completions),
                     f"run.root={tmp_path / 'runs'}", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["total"] == 3 and summary["passed"] == 1 and summary["by_status"] == {"failed": 2, "passed": 1}
    assert lines[0] == f"run directory: {summary['run_dir']}"
    assert lines[-2].startswith(f"run directory: {summary['run_dir']}")
    verdicts = read_parquet(Verdict, summary["verdicts"])
    assert [(v.task_id, v.sample_idx, v.tests_passed) for v in verdicts] == [
        ("examples/bell-state", 0, 2), ("examples/bell-state", 1, 1), ("examples/ghz-function", 0, 0)]


def test_failing_job_exits_1_and_records_the_error(tmp_path):
    tasks = tmp_path / "no-reference.jsonl"
    tasks.write_text(json.dumps({"task_id": "t/0", "family": "test", "harness": "program", "prompt": "",
                                 "tests": ""}) + "\n")
    result = qvr("verify", "--tasks", str(tasks), "--canonical", f"run.root={tmp_path}", "--json")
    assert result.returncode == 1
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert "'t/0' has no reference solution" in summary["error"]
    assert json.loads((Path(summary["run_dir"]) / "summary.json").read_text())["error"] == summary["error"]


@pytest.mark.parametrize("problem", ["missing tasks", "unknown task", "broken JSON"])
def test_bad_inputs_of_verify_exit_2_naming_file_line_and_task(tmp_path, problem):
    completions = tmp_path / "completions.jsonl"
    completions.write_text('{"task_id": "examples/bell-state", "completion": "x"}\n' + {
        "missing tasks": "", "unknown task": '{"task_id": "examples/nope", "completion": "y"}\n',
        "broken JSON": '{"task_id": "examples/bell-state", "completion": \n'}[problem])
    tasks = tmp_path / "missing.jsonl" if problem == "missing tasks" else EXAMPLES
    result = qvr("verify", "--tasks", str(tasks), "--completions", str(completions), f"run.root={tmp_path / 'runs'}")
    assert result.returncode == 2, result.stderr[-2000:]
    expected = {"missing tasks": str(tasks), "unknown task": f"{completions}:2: task 'examples/nope'",
                "broken JSON": f"{completions}:2: not JSON"}[problem]
    assert expected in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "runs").exists()


def test_bad_config_exits_2_before_anything_starts(tmp_path):
    result = qvr("verify", "verifier.timeout_s=soon", f"run.root={tmp_path / 'runs'}")
    assert result.returncode == 2
    assert "verifier.timeout_s" in result.stderr and "'soon'" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_the_console_shows_qvr_lines_and_only_errors_of_libraries_unless_verbose(tmp_path, capsys):
    import logging
    import warnings

    from pipelines.console import setup_logging

    file_log = logging.FileHandler(tmp_path / "run.log")  # as a run's log file
    logging.getLogger().addHandler(file_log)
    try:
        for verbose in (False, True):
            setup_logging(verbose=verbose)
            logging.getLogger("qvr.grpo").info("step line %d", verbose)
            logging.getLogger("qvr").info("cluster resources %d", verbose, extra={"console": False})
            logging.getLogger("qiskit.passmanager.base_tasks").info("Pass: BasisTranslator %d", verbose)
            logging.getLogger("deepspeed").warning("a harmless warning %d", verbose)
            logging.getLogger("vllm").error("a real error %d", verbose)
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings.warn(f"job mode is deprecated {verbose:d}", DeprecationWarning, stacklevel=1)
            console = capsys.readouterr().err
            assert f"step line {verbose:d}" in console and f"a real error {verbose:d}" in console
            for library_line in (f"BasisTranslator {verbose:d}", f"a harmless warning {verbose:d}",
                                 f"job mode is deprecated {verbose:d}", f"cluster resources {verbose:d}"):
                assert (library_line in console) == verbose, (library_line, console)
        kept = (tmp_path / "run.log").read_text()
        assert all(line in kept for line in ("step line 0", "BasisTranslator 0", "a harmless warning 0",
                                             "job mode is deprecated 0", "cluster resources 0"))
    finally:
        logging.getLogger().removeHandler(file_log)
        file_log.close()
        logging.captureWarnings(False)


WORKER_OUTPUT_SCRIPT = """
import logging, sys, time
import ray
import ray.data
from pipelines.console import setup_logging
from pipelines.job import RayConfig, connect_ray

setup_logging(verbose=False)
logging.getLogger().addHandler(logging.FileHandler(sys.argv[1]))
connect_ray(RayConfig(num_cpus=1, namespace="qvr-test-console"))

@ray.remote(num_cpus=0.1)
def chatty():
    print("an actor's harmless stdout line", flush=True)
    print("2026-12-02 10:00:00 WARNING deepspeed: a harmless stderr warning", file=sys.stderr, flush=True)
    print("2026-12-02 10:00:00 ERROR qvr.pool: a real error in a worker", file=sys.stderr, flush=True)
    return 1

assert ray.get(chatty.remote()) == 1
assert ray.data.range(4).map_batches(lambda batch: batch).count() == 4
# Ray's driver thread hands the workers' lines on in batches: wait until all three have arrived.
lines = ("an actor's harmless stdout line", "a harmless stderr warning", "a real error in a worker")
deadline = time.monotonic() + 120
while not all(line in open(sys.argv[1]).read() for line in lines) and time.monotonic() < deadline:
    time.sleep(0.05)
ray.shutdown()
"""


@pytest.mark.slow
def test_ray_and_its_workers_output_goes_to_the_log_file_and_only_errors_to_the_console(tmp_path):
    log_file = tmp_path / "run.log"
    result = subprocess.run([sys.executable, "-c", WORKER_OUTPUT_SCRIPT, str(log_file)], cwd=ROOT, env=child_env(),
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    console = result.stdout + result.stderr
    kept = log_file.read_text()
    assert "an actor's harmless stdout line" in kept and "a harmless stderr warning" in kept, kept[-3000:]
    assert "an actor's harmless stdout line" not in console and "a harmless stderr warning" not in console, console
    assert "a real error in a worker" in console and "a real error in a worker" in kept
    assert "Execution plan of Dataset" in kept and "Dataset" not in console, console


def test_deepspeeds_own_console_handler_is_bypassed_unless_verbose(tmp_path, capfd):
    """DeepSpeed's logger prints with its own handler and does not propagate; its warnings go to the
    run's log file, its errors still show."""
    import logging

    from deepspeed.utils import logger as deepspeed_logger

    from pipelines.console import setup_logging

    # DeepSpeed's handler keeps the stdout of when it was first imported (maybe an earlier test's capture).
    # Only its own plain StreamHandler: pytest's capture handlers (StreamHandler subclasses) may sit
    # on the logger too after an in-process job, and must keep their own streams.
    for handler in deepspeed_logger.handlers:
        if type(handler) is logging.StreamHandler:
            handler.setStream(sys.stdout)
    file_log = logging.FileHandler(tmp_path / "run.log")
    logging.getLogger().addHandler(file_log)
    try:
        for verbose in (False, True):
            setup_logging(verbose=verbose)
            deepspeed_logger.warning("Setting accelerator to CPU %d", verbose)
            deepspeed_logger.error("a real DeepSpeed error %d", verbose)
            console = "".join(capfd.readouterr())
            assert (f"Setting accelerator to CPU {verbose:d}" in console) == verbose, console
            assert f"a real DeepSpeed error {verbose:d}" in console
        assert "Setting accelerator to CPU 0" in (tmp_path / "run.log").read_text()
    finally:
        logging.getLogger().removeHandler(file_log)
        file_log.close()
        setup_logging(verbose=False)
