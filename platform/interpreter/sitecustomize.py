"""Puts the interpreter that runs a Ray job's processes first on their PATH.

`ray job submit ... -- python -m pipelines ...` runs its entrypoint in a shell under Ray's job
supervisor, and `python` there is whatever the head's PATH finds first: on a head started as
`.venv/bin/ray start --head` from a shell that never activated the venv, that is another Python
(without torch, or none at all). platform/runtime_env.yaml puts this folder on PYTHONPATH (relative
to the job's working directory, which is every job process's current directory), so Python imports
this module at start-up in each of the job's processes: the supervisor, the driver, every task and
actor. Each one then finds its own interpreter's folder (the cluster's environment: the venv, or
/opt/venv in docker/) first on PATH, and so does every command it starts, the entrypoint included.
Processes that do not belong to a job (the verifier's zygotes run `python -I`) never read it.

Not a package (platform/ is never one): one module on PYTHONPATH. Any sitecustomize that this one
shadows on sys.path still runs, afterwards.
"""

import os
import sys


def _interpreter_first_on_path() -> None:
    folder = os.path.dirname(sys.executable) if sys.executable else ""
    entries = os.environ.get("PATH", "").split(os.pathsep)
    if folder and entries[:1] != [folder]:
        os.environ["PATH"] = os.pathsep.join([folder, *(entry for entry in entries if entry != folder)])


def _run_the_shadowed_sitecustomize() -> None:
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    later = [entry for entry in sys.path if entry and os.path.abspath(entry) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", later)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_interpreter_first_on_path()
_run_the_shadowed_sitecustomize()
