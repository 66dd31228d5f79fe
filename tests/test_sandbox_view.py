"""What sandboxed code can see of the file system: an allow-list, and nothing of the project.

The plan is checked as data (no root needed); then, for real, a candidate running from a regular
install (qvr's packages copied into a virtualenv's site-packages, as `pip install .` does) and
one verified through `qvr verify` (the issue's attack: find the project through a module's path,
exec a task's reference solution from the task file) find nothing.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from actors.contracts import Completion, Verdict, read_parquet
from actors.verify.sandbox.isolation import plan_view
from tests.conftest import EXAMPLES, ROOT, child_env, run_qvr


def shown(plan: dict) -> dict[str, str]:
    return dict(plan["binds"])


def covered(plan: dict) -> set[str]:
    return {path for path, _ in plan["cover"]}


@pytest.fixture
def layout(tmp_path):
    """A checkout with a virtualenv inside it, a task file and runs, and a site-packages."""
    project = tmp_path / "project"
    for folder in ("actors/verify", "pipelines/tasks/examples", "configs", "runs/grpo-1", ".venv/lib/site-packages/numpy"):
        (project / folder).mkdir(parents=True)
    (project / "pipelines/tasks/examples/tasks.jsonl").write_text("{}\n")
    site = tmp_path / "site-packages"
    for folder in ("actors/verify", "pipelines/tasks", "qiskit"):
        (site / folder).mkdir(parents=True)
    (site / "actors/__init__.py").write_text("")
    (site / "pipelines/__init__.py").write_text("")
    (site / "secret-tasks.jsonl").write_text("{}\n")
    return project, site


def test_the_checkout_is_never_shown_but_its_virtualenv_is(layout):
    project, _ = layout
    venv = project / ".venv"
    plan = plan_view([str(venv)], [str(project), str(venv / "lib/site-packages")], str(project), [], [])
    assert str(venv) in shown(plan)
    assert not any(place == str(project) or place.startswith(f"{project}/pipelines") or place.startswith(f"{project}/runs")
                   for place in shown(plan))
    assert {"/usr"} <= set(shown(plan)) and all(place.startswith(("/usr", "/etc/", str(venv))) for place in shown(plan))


def test_a_regular_install_shows_site_packages_but_covers_qvr_and_hidden_paths(layout):
    _, site = layout
    hidden = [str(site / "secret-tasks.jsonl"), "/nonexistent/tasks.jsonl"]
    plan = plan_view([], [str(site)], None, [str(site / "actors"), str(site / "pipelines")], hidden)
    assert str(site) in shown(plan)
    assert covered(plan) == {str(site / "actors"), str(site / "pipelines"), str(site / "secret-tasks.jsonl")}
    assert dict(plan["cover"])[str(site / "secret-tasks.jsonl")] is False  # a file is covered by an empty file


def test_paths_outside_the_view_need_no_cover(layout):
    project, _ = layout
    plan = plan_view([], [], str(project), [], [str(project / "runs"), "/tmp", str(Path.home())])
    assert covered(plan) == set()  # not shown, so nothing to cover
    assert not any(place.startswith(("/tmp", "/home", "/root", "/run", "/var")) for place in shown(plan))


def test_etc_holds_only_what_the_linker_and_lookups_read():
    plan = plan_view([], [], None, [], [])
    etc = {place for place in shown(plan) if place.startswith("/etc")}
    assert etc and all(place.split("/")[2] in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf",
                                                "passwd", "group", "alternatives", "fonts", "mime.types") for place in etc)
    assert "/etc" not in shown(plan)


# ---------------------------------------------------------------- for real

ATTACK = textwrap.dedent("""\
    import actors, os, sys
    here = os.path.dirname(os.path.dirname(actors.__file__))
    for rel in ('pipelines/tasks/examples/qiskit-basics.jsonl', 'pipelines/tasks/templates/__init__.py',
                'actors/verify/sandbox/zygote.py', 'secret-tasks.jsonl'):
        try:
            open(os.path.join(here, rel)).read(1)
            print('LEAK read ' + rel, file=sys.stderr)
        except OSError:
            pass
    for folder in ('actors', 'pipelines'):
        if os.path.isdir(os.path.join(here, folder)) and os.listdir(os.path.join(here, folder)):
            print('LEAK listed ' + folder, file=sys.stderr)
    try:
        import pipelines.tasks.templates
        print('LEAK imported the templates', file=sys.stderr)
    except ImportError:
        pass
    """)

REGULAR_INSTALL_SCRIPT = textwrap.dedent("""\
    import json, sys
    import actors
    from actors.contracts import Task
    from actors.verify.config import VerifierConfig
    from actors.verify.executor import VerificationJob
    from actors.verify.verifier import Verifier
    assert '/site-packages/' in actors.__file__, actors.__file__
    task = Task(task_id='t', family='f', harness='program', prompt='', tests='')
    out = {}
    for mode in ('shared', 'split'):
        with Verifier(VerifierConfig(isolation=mode, timeout_s=60, sandbox={'hidden_paths': [sys.argv[2]]}), slots=1) as verifier:
            verdict = verifier.verify_one(VerificationJob(task, open(sys.argv[1]).read()))
            out[mode] = [verdict.status, verdict.isolation, verdict.stderr_tail]
    print(json.dumps(out))
    """)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="split mode needs root with user, mount and PID namespaces")
def test_a_regular_install_shows_nothing_of_qvr_or_its_tasks(tmp_path):
    """qvr installed into a virtualenv's site-packages (its packages copied there, as a regular
    `pip install .` does), its third-party packages reached through a .pth: a candidate that
    finds qvr's packages through a module's path reads nothing, imports nothing, in both modes."""
    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.run([str(venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    for package in ("actors", "pipelines"):
        shutil.copytree(ROOT / package, site / package, ignore=shutil.ignore_patterns("__pycache__"))
    (site / "secret-tasks.jsonl").write_text('{"reference_solution": "QVR-CANARY"}\n')
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (tmp_path / "attack.py").write_text(ATTACK)
    (tmp_path / "run.py").write_text(REGULAR_INSTALL_SCRIPT)
    env = {key: value for key, value in child_env().items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run([str(venv / "bin/python"), "run.py", "attack.py", str(site / "secret-tasks.jsonl")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    verdicts = json.loads(result.stdout.strip().splitlines()[-1])
    for mode, (status, isolation, stderr) in verdicts.items():
        assert (status, isolation) == ("passed", mode), stderr
        assert "LEAK" not in stderr, stderr


@pytest.mark.slow
def test_qvr_verify_does_not_pass_a_reference_read_off_the_disk(tmp_path, ray_session):
    """The issue's attack through the CLI, split mode: the task file copied elsewhere (so
    `--tasks` hides only the copy), the completion reads the original through the project's path
    and execs its reference solution. On main this passed 1/1."""
    tasks = tmp_path / "elsewhere" / "tasks.jsonl"
    tasks.parent.mkdir()
    shutil.copy(EXAMPLES, tasks)
    code = ("import actors, json, os\n"
            "project = os.path.dirname(os.path.dirname(actors.__file__))\n"
            "for line in open(os.path.join(project, 'pipelines/tasks/examples/qiskit-basics.jsonl')):\n"
            "    row = json.loads(line)\n"
            "    if row['task_id'] == 'examples/bell-state':\n"
            "        exec(row['reference_solution'])\n")
    completions = tmp_path / "completions.jsonl"
    completions.write_text(json.dumps({"task_id": "examples/bell-state", "completion": f"```python\n{code}```"}) + "\n")
    result = run_qvr("verify", "--tasks", str(tasks), "--completions", str(completions), "verifier.isolation=split",
                     f"run.root={tmp_path / 'runs'}", "ray.num_cpus=2", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = result.summary
    assert summary["total"] == 1 and summary["passed"] == 0, summary
    assert summary["by_isolation"]["split"] == 1
    # It failed because the file was not there to read, not for another reason ...
    [verdict] = read_parquet(Verdict, summary["verdicts"])
    assert "qiskit-basics.jsonl" in verdict.stderr_tail and (
        "FileNotFoundError" in verdict.stderr_tail or "PermissionError" in verdict.stderr_tail), verdict.stderr_tail
    # ... and the same completion passes where nothing hides the disk (a plain fork, no sandbox).
    from actors.verify.config import VerifierConfig
    from actors.verify.verifier import Verifier, pair_jobs
    from pipelines.tasks.loader import TaskSourceConfig, load_tasks

    task = next(task for task in load_tasks(TaskSourceConfig(source=str(tasks))) if task.task_id == "examples/bell-state")
    with Verifier(VerifierConfig(timeout_s=60), slots=1, executor="bare") as bare:
        [unhidden] = bare.run(pair_jobs([task], [Completion(task_id=task.task_id, sample_idx=0,
                                                            text=f"```python\n{code}```")]))
    assert unhidden.status == "passed", unhidden.stderr_tail
