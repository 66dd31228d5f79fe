"""Jobs run end to end through `ray job submit` against a local head that this module starts and stops.

The head and the submitting client both run with a PATH that lacks the project's venv (a shell that
never activated it), the way a head started as `.venv/bin/ray start --head` runs: every job here
therefore also checks that the README's `python -m pipelines ...` entrypoint gets the cluster's
interpreter from platform/runtime_env.yaml, not from PATH."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_two_stage_recipe

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ray_cli() -> str:
    return str(Path(sys.executable).parent / "ray")


def without_the_venv(**extra: str) -> dict[str, str]:
    """The environment of a shell that never activated the project's venv: its bin folder is not on
    PATH (the `ray` CLI is called by its full path)."""
    venv_bin = Path(sys.executable).parent.resolve()
    env = {key: value for key, value in os.environ.items()
           if key not in ("VIRTUAL_ENV", "RAY_ADDRESS", "PYTHONPATH", "PYTHONHOME")}
    entries = [entry for entry in env.get("PATH", "").split(os.pathsep)
               if entry and Path(entry).resolve() != venv_bin]
    env["PATH"] = os.pathsep.join(entries or ["/usr/bin", "/bin"])
    env.update(extra)
    return env


def start_head(home: Path, temp_dir: str, attempts: int = 3) -> tuple[subprocess.Popen, str]:
    """`ray start --head --block` in its own session, retried: on a loaded machine the raylet may give
    up waiting for its dashboard agent (a fixed wait inside Ray) and the node then never comes up, or
    comes up without the job agent that `ray job submit` needs (then every submission is refused)."""
    for attempt in range(1, attempts + 1):
        dashboard_port = free_port()
        log_path = home / f"ray-head-{attempt}.log"
        with open(log_path, "w") as log:
            head = subprocess.Popen(
                [ray_cli(), "start", "--head", "--block", "--temp-dir", temp_dir, "--num-cpus", "2",
                 "--port", str(free_port()), "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard_port),
                 # The job agent's HTTP port is fixed by default (52365): another Ray on this machine
                 # (a test's, a user's) holding it leaves this head without a job agent.
                 "--dashboard-agent-listen-port", str(free_port()),
                 "--include-dashboard", "true", "--disable-usage-stats"],
                stdout=log, stderr=subprocess.STDOUT, env=without_the_venv(RAY_USAGE_STATS_ENABLED="0"), cwd=home,
                start_new_session=True)
        address = f"http://127.0.0.1:{dashboard_port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and head.poll() is None:
            if "Ray runtime started." in log_path.read_text():  # printed once the node is up
                if job_agent_answers(address, deadline=time.monotonic() + 240):
                    return head, address
                break
            time.sleep(2)
        stop_head(head)
    pytest.fail(f"the Ray head did not start in {attempts} attempts:\n" + log_path.read_text()[-3000:])


def job_agent_answers(address: str, deadline: float) -> bool:
    """Whether the head runs a trivial job before ``deadline``: its job agent has started (seconds
    after the node, minutes on a loaded machine)."""
    env = without_the_venv(RAY_AUTH_MODE="token")
    while time.monotonic() < deadline:
        probe = subprocess.run([ray_cli(), "job", "submit", "--address", address, "--", "true"], env=env,
                               capture_output=True, text=True, timeout=300)
        if probe.returncode == 0:
            return True
        time.sleep(3)
    return False


def stop_head(head: subprocess.Popen) -> None:
    try:
        os.killpg(head.pid, 15)
    except ProcessLookupError:
        return
    try:
        head.wait(10)  # a head that takes longer to stop (tens of seconds, seen here) is killed: its temp dir goes too
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, 9)
        head.wait()


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """A local head, started (and stopped) with the environment of a shell that never activated the venv."""
    home = tmp_path_factory.mktemp("ray-head")
    # Its own temp dir keeps this head (and its ray_current_cluster file) invisible to other Ray users here.
    temp_dir = tempfile.mkdtemp(prefix="qvr-ray-", dir="/tmp")
    head, address = start_head(home, temp_dir)
    try:
        yield address, without_the_venv(RAY_AUTH_MODE="token")
    finally:
        stop_head(head)
        shutil.rmtree(temp_dir, ignore_errors=True)


AGENT_NOT_READY = "No available agent to submit job"
"""What the head answers while its job agent is still starting (seconds after `ray job list`
works, longer on a loaded machine): nothing was submitted, so submitting again is safe."""


def submit_job(address: str, env: dict[str, str], submission: str, entrypoint: list[str], runtime_env: bool = True):
    """`ray job submit` from the project root, as the README shows it; (exit status, its output, the
    job's logs)."""
    command = [ray_cli(), "job", "submit", "--address", address, "--submission-id", submission,
               *(["--runtime-env", "platform/runtime_env.yaml"] if runtime_env else []), "--working-dir", ".",
               "--", *entrypoint]
    deadline = time.monotonic() + 180
    while True:
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        if AGENT_NOT_READY not in result.stderr or time.monotonic() > deadline:
            break
        time.sleep(3)
    logs = subprocess.run([ray_cli(), "job", "logs", "--address", address, submission],
                          env=env, capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout + result.stderr, logs.stdout


def test_python_is_the_clusters_interpreter_whatever_the_path(ray_head):
    """The entrypoint's `python` is the interpreter Ray runs the job with (the venv's, with torch),
    although neither the head's nor the client's PATH holds the venv; without the runtime env it is not."""
    address, env = ray_head
    entrypoint = ["python", "-c", "import sys, torch; print('PYTHON=' + sys.executable)"]
    status, output, logs = submit_job(address, env, f"qvr-test-python-{os.getpid()}", entrypoint)
    assert status == 0, output
    assert f"PYTHON={sys.executable}" in logs, logs
    # The head's PATH really lacks the venv: the same entrypoint without the runtime env gets another
    # python (none at all, or one without torch).
    status, output, logs = submit_job(address, env, f"qvr-test-python-bare-{os.getpid()}", entrypoint, runtime_env=False)
    assert status != 0 or f"PYTHON={sys.executable}" not in logs, logs


def test_sandbox_sees_nothing_of_the_working_dir_copy(ray_head, tmp_path):
    """Under `ray job submit` the project is the working dir's unpacked copy: a candidate that
    finds it through a module's path cannot read the task file there, nor exec a reference."""
    address, env = ray_head
    code = ("import actors, json, os\n"
            "project = os.path.dirname(os.path.dirname(actors.__file__))\n"
            "for line in open(os.path.join(project, 'pipelines/tasks/examples/qiskit-basics.jsonl')):\n"
            "    row = json.loads(line)\n"
            "    exec(row['reference_solution'])\n")
    completions = tmp_path / "completions.jsonl"
    completions.write_text("".join(json.dumps({"task_id": task_id, "completion": f"```python\n{code}```"}) + "\n"
                                   for task_id in ("examples/bell-state", "examples/sampler-counts")))
    submission = f"qvr-test-attack-{os.getpid()}"
    code, output, logs = submit_job(address, env, submission, [
        "python", "-m", "pipelines", "verify", "--tasks", "pipelines/tasks/examples/qiskit-basics.jsonl",
        "--completions", str(completions), f"run.root={tmp_path / 'runs'}", "--json"])
    assert code == 0, output
    summary = json.loads([line for line in logs.splitlines() if line.startswith("{")][-1])
    assert summary["total"] == 2 and summary["passed"] == 0, summary
    import pyarrow.parquet as pq

    for row in pq.read_table(summary["verdicts"]).to_pylist():
        assert "FileNotFoundError" in row["stderr_tail"], row["stderr_tail"][-600:]


def test_a_recipe_through_ray_job_submit(ray_head, tmp_path):
    """The whole recipe is one `ray job submit`: its stages join the cluster's Ray, one after another;
    the job succeeds, prints its run directory first and last, and each stage writes its run's files
    (the second stage is a `qvr verify` job)."""
    address, env = ray_head
    runs = tmp_path / "runs"
    recipe = write_two_stage_recipe(tmp_path / "recipe.yaml", "submitted")
    submission = f"qvr-test-recipe-{os.getpid()}"
    code, output, logs = submit_job(address, env, submission, [
        "python", "-m", "pipelines", "recipe", "--config", str(recipe), f"run.root={runs}", "--json"])
    assert code == 0, output
    status = subprocess.run([ray_cli(), "job", "status", "--address", address, submission],
                            env=env, capture_output=True, text=True, timeout=60)
    assert f"Job '{submission}' succeeded" in status.stdout + status.stderr, status.stdout + status.stderr

    summary = json.loads([line for line in logs.splitlines() if line.startswith("{")][-1])
    assert [(stage["stage"], stage["status"]) for stage in summary["stages"]] == [("synth", "done"), ("check", "done")]
    printed = re.findall(r"run directory: (\S+)", logs)
    assert printed[0] == printed[-1] == summary["run_dir"] == str(runs / "recipe-submitted")
    check_dir = runs / "recipe-submitted/stages/02-check"
    check = json.loads((check_dir / "summary.json").read_text())
    assert check["job"] == "verify" and check["total"] == check["passed"] == 2
    for name in ("config.yaml", "metrics.jsonl", "run.log", "summary.json", "verdicts.parquet"):
        assert (check_dir / name).is_file(), name
    assert list(check_dir.glob("events.out.tfevents.*"))
    assert len((check_dir / "metrics.jsonl").read_text().splitlines()) == 2  # one row per verdict
