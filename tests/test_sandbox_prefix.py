"""The sandbox shows the interpreter and its packages wherever they lie, under /tmp included.

Users and CI systems clone into /tmp. The sandbox gives each job a private tmpfs at /tmp (its
working directory); the interpreter's prefix and site-packages must still be visible on top of
it (qiskit-ibm-runtime reads its fake backends' JSON from there), while nothing else of the real
/tmp is: not the checkout around its .venv, not a file beside the checkout.

The layout, built once under a fresh directory of /tmp: a checkout (a copy of qvr's packages)
with a .venv inside it whose site-packages holds real package folders, each file a hard link
(or a copy, where /tmp is another file system) of the distributions that the verifier, the
zygote and the QHE references below import, plus a small package that reads a data file shipped
inside it. The verifier then runs from that interpreter, as `make test` does in such a clone.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
from dataclasses import asdict
from pathlib import Path

import pytest

from actors.verify.sandbox.isolation import SANDBOX_HOME
from tests.conftest import QHE_JSON, ROOT, child_env

pytestmark = pytest.mark.slow

SPLIT = os.geteuid() == 0
"""Split isolation needs root (a PID namespace per child); shared runs everywhere."""

CLOSURE = textwrap.dedent("""\
    import ast, importlib, importlib.metadata as metadata, importlib.util, json, os, sys, sysconfig
    import actors.verify.forkserver, actors.verify.verifier, pyseccomp  # noqa: F401
    from actors.verify.sandbox.warm import warm_up
    warm_up()
    for source in json.load(open(sys.argv[1])):  # what the QHE references import
        for node in ast.walk(ast.parse(source)):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \\
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            for name in names:
                try:
                    importlib.import_module(name)
                except Exception:
                    pass
    site = os.path.realpath(sysconfig.get_paths()["purelib"])
    owners = metadata.packages_distributions()
    files = set()
    for top in {name.split(".")[0] for name in list(sys.modules)}:
        for name in owners.get(top, []):
            if name == "qvr":
                continue
            dist = metadata.distribution(name)
            for entry in dist.files or []:
                path = os.path.realpath(dist.locate_file(entry))
                if path.startswith(site + os.sep) and os.path.isfile(path):
                    files.add(os.path.relpath(path, site))
                    if path.endswith(".py"):  # its bytecode too, or the first import compiles it all
                        cached = importlib.util.cache_from_source(path)
                        if os.path.isfile(cached):
                            files.add(os.path.relpath(cached, site))
    print(json.dumps(sorted(files)))
    """)

RUNNER = textwrap.dedent("""\
    import json, sys
    import actors
    from actors.contracts import Task
    from actors.verify.config import VerifierConfig
    from actors.verify.executor import VerificationJob
    from actors.verify.verifier import Verifier
    spec = json.load(open(sys.argv[1]))
    assert actors.__file__.startswith(spec["checkout"] + "/"), actors.__file__
    tasks = [Task(**task) for task in spec["tasks"]]
    # One run of each stochastic reference: the flaky-reference check (3 runs) is test_noise_verdicts' claim.
    config = VerifierConfig(timeout_s=180, qpu_gateway=False, sandbox={"hidden_paths": spec["hidden"]},
                            noise={"reference_runs": 1})
    with Verifier(config, slots=spec["slots"]) as verifier:
        if spec["calibrate"]:
            _, verdicts = verifier.calibrate(tasks)
        else:
            verdicts = verifier.run([VerificationJob(task, task.reference_solution) for task in tasks])
    print(json.dumps([[v.task_id, v.status, v.isolation, v.stderr_tail[-2000:]] for v in verdicts]))
    """)

PROBE = textwrap.dedent("""\
    import json, os

    def settings():
        with open(os.path.join(os.path.dirname(__file__), "data", "settings.json")) as stream:
            return json.load(stream)
    """)


def qhe_fake_backend_tasks() -> list:
    """QHE's tasks whose canonical solutions use a fake backend (qiskit-ibm-runtime's JSON) and
    can pass offline."""
    from pipelines.tasks.loader import TaskSourceConfig, load_tasks
    from pipelines.tasks.qhe import CANNOT_PASS_OFFLINE, task_number

    return [task for task in load_tasks(TaskSourceConfig(source=str(QHE_JSON)))
            if "fake" in task.reference_solution.lower() and task_number(task.task_id) not in CANNOT_PASS_OFFLINE]


def link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


@pytest.fixture(scope="module")
def layout():
    base = Path(tempfile.mkdtemp(prefix="qvr-prefix-", dir=SANDBOX_HOME))
    base.chmod(0o755)  # readable by the sandbox's uid: only the view may hide what lies beside the venv
    try:
        checkout = base / "qvr"
        for package in ("actors", "pipelines"):
            shutil.copytree(ROOT / package, checkout / package, ignore=shutil.ignore_patterns("__pycache__"))
        venv = checkout / ".venv"
        subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        python = venv / "bin" / "python"
        site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   check=True, capture_output=True, text=True).stdout.strip())
        sources = [f"{task.prompt}{task.reference_solution}\n{task.tests}"
                   for task in (qhe_fake_backend_tasks() if QHE_JSON.is_file() else [])]
        (base / "sources.json").write_text(json.dumps(sources))
        closure = subprocess.run([sys.executable, "-c", CLOSURE, str(base / "sources.json")], cwd=ROOT,
                                 env=child_env(), check=True, capture_output=True, text=True, timeout=600)
        real_site = Path(sysconfig.get_paths()["purelib"]).resolve()
        for relative in json.loads(closure.stdout.strip().splitlines()[-1]):
            link_or_copy(real_site / relative, site / relative)
        (site / "qvr.pth").write_text(f"{checkout}\n")  # qvr from the checkout, as an editable install
        (site / "qvrprobe" / "data").mkdir(parents=True)
        (site / "qvrprobe" / "__init__.py").write_text(PROBE)
        (site / "qvrprobe" / "data" / "settings.json").write_text('{"shipped": "inside the package"}')
        (site / "secret-tasks.jsonl").write_text('{"reference_solution": "QVR-CANARY"}\n')
        (base / "beside.txt").write_text("QVR-CANARY\n")
        (checkout / "runs").mkdir()
        (checkout / "runs" / "verdicts.jsonl").write_text("QVR-CANARY\n")
        yield {"base": base, "checkout": checkout, "venv": venv, "site": site, "python": python}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run(layout: dict, tasks: list, calibrate: bool = False, slots: int = 1) -> dict[str, list]:
    """Verify ``tasks`` (their reference solutions) with the interpreter under /tmp."""
    spec = {"checkout": str(layout["checkout"]), "tasks": [asdict(task) for task in tasks], "calibrate": calibrate,
            "slots": slots, "hidden": [str(layout["site"] / "secret-tasks.jsonl"), str(layout["checkout"] / "runs")]}
    (layout["base"] / "spec.json").write_text(json.dumps(spec))
    (layout["base"] / "run.py").write_text(RUNNER)
    env = {key: value for key, value in child_env().items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run([str(layout["python"]), "run.py", "spec.json"], cwd=layout["base"], env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return {task_id: rest for task_id, *rest in json.loads(result.stdout.strip().splitlines()[-1])}


def program(task_id: str, code: str, mode: str):
    from actors.contracts import Task

    return Task(task_id=task_id, family="prefix", harness="program", prompt="", tests="", reference_solution=code,
                metadata={"isolation": mode})


MODES = ("shared", "split") if SPLIT else ("shared",)


def test_packages_under_tmp_are_shown(layout):
    """A package of the venv under /tmp, imported fresh in the child, reads a data file shipped
    inside it; so does qiskit-ibm-runtime (a fake backend the zygote did not warm)."""
    code = textwrap.dedent(f"""\
        import qvrprobe
        assert qvrprobe.__file__.startswith({str(layout['site'])!r}), qvrprobe.__file__
        assert qvrprobe.settings() == {{"shipped": "inside the package"}}
        from qiskit_ibm_runtime.fake_provider import FakeNairobiV2
        assert FakeNairobiV2().num_qubits == 7
        """)
    verdicts = run(layout, [program(f"read-{mode}", code, mode) for mode in MODES])
    for mode in MODES:
        status, isolation, stderr = verdicts[f"read-{mode}"]
        assert (status, isolation) == ("passed", mode), stderr


def test_the_rest_of_tmp_stays_hidden(layout):
    """Only the venv shows: not the checkout around it, not a file beside it, not what
    hidden_paths covers inside the venv; the working directory is private and writable, and the
    venv is read-only."""
    base, checkout, site = layout["base"], layout["checkout"], layout["site"]
    code = textwrap.dedent(f"""\
        import os
        def readable(path):
            try:
                return open(path).read()
            except OSError:
                return ""
        leaks = []
        for path in ({str(base / 'beside.txt')!r}, {str(base / 'spec.json')!r},
                     {str(checkout / 'actors/verify/sandbox/zygote.py')!r},
                     {str(checkout / 'pipelines/tasks/examples/qiskit-basics.jsonl')!r},
                     {str(checkout / 'runs/verdicts.jsonl')!r}, {str(site / 'secret-tasks.jsonl')!r}):
            if readable(path):  # what hidden_paths covers reads as an empty file
                leaks.append("read " + path)
        for folder, expected in (({str(base)!r}, ["qvr"]), ({str(checkout)!r}, [".venv"])):
            if sorted(os.listdir(folder)) != expected:
                leaks.append("listed " + folder + ": " + repr(sorted(os.listdir(folder))))
        assert os.getcwd() == {SANDBOX_HOME!r}, os.getcwd()
        assert sorted(os.listdir(".")) == [{base.name!r}], os.listdir(".")
        with open("written.txt", "w") as stream:
            stream.write("mine")
        assert open("written.txt").read() == "mine"
        try:
            open({str(site / 'qvrprobe' / 'planted.py')!r}, "w").close()
            leaks.append("wrote into the venv")
        except OSError:
            pass
        assert not leaks, leaks
        """)
    verdicts = run(layout, [program(f"hide-{mode}", code, mode) for mode in MODES])
    for mode in MODES:
        status, isolation, stderr = verdicts[f"hide-{mode}"]
        assert (status, isolation) == ("passed", mode), stderr
    assert not (site / "qvrprobe" / "planted.py").exists()


@pytest.mark.skipif(not QHE_JSON.is_file(), reason="Qiskit HumanEval is not beside the project")
def test_qhe_fake_backend_references_pass_from_a_venv_under_tmp(layout):
    """QHE's references that use fake backends (qiskit-ibm-runtime's JSON read from the venv
    under /tmp) pass, each in the isolation mode it gets from the project's own .venv."""
    from pipelines.tasks.qhe import task_number
    from tests.test_qhe import NEED_SHARED

    tasks = qhe_fake_backend_tasks()
    assert len(tasks) >= 10
    verdicts = run(layout, tasks, calibrate=True, slots=2)
    failed = {task_id: stderr[-600:] for task_id, (status, _, stderr) in verdicts.items() if status != "passed"}
    assert failed == {}
    if SPLIT:
        shared = {task_number(task_id) for task_id, (_, isolation, _) in verdicts.items() if isolation == "shared"}
        assert shared == NEED_SHARED & {task_number(task.task_id) for task in tasks}
