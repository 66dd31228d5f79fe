"""The attack battery: what a policy might write, run in the forked sandbox.

Each case has its expected verdicts; after each, the worker still serves, no process and no file
is left, the host is untouched and the next verification is as fast as before."""

import glob
import os
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from actors.contracts import Task
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.sandbox.config import SandboxConfig
from actors.verify.sandbox.isolation import ETC_ENTRIES, SYSTEM_PATHS
from actors.verify.sandbox.zygote import SANDBOX_UIDS
from actors.verify.verifier import Verifier
from tests.conftest import EXAMPLES, ROOT

pytestmark = pytest.mark.slow
CANARY = "QVR-CANARY-7f3a"


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """Things on the host that sandboxed code must neither reach nor change."""
    secret_dir = tmp_path_factory.mktemp("hidden-tasks")
    (secret_dir / "tasks.jsonl").write_text(f'{{"reference_solution": "{CANARY}"}}\n')
    credentials = Path.home() / ".qvr-test-credentials"
    credentials.write_text(CANARY)
    victim = Path(f"/tmp/qvr-victim-{os.getpid()}")
    victim.write_text("keep me")
    project_victim = ROOT / ".qvr-attack-victim"
    project_victim.write_text("keep me")
    runs_canary = ROOT / "runs" / "qvr-attack-canary.txt"
    runs_canary.parent.mkdir(exist_ok=True)
    runs_canary.write_text(CANARY)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    connections = []
    unix_path = f"/tmp/qvr-test-{os.getpid()}.sock"
    unix_listener = socket.socket(socket.AF_UNIX)
    unix_listener.bind(unix_path)
    unix_listener.listen()
    unix_listener.settimeout(0.2)
    stop = threading.Event()

    def accept_all():
        while not stop.is_set():
            for server in (listener, unix_listener):
                try:
                    connections.append(server.accept())
                except (TimeoutError, OSError):
                    pass

    thread = threading.Thread(target=accept_all, daemon=True)
    thread.start()
    os.environ["QVR_CANARY_TOKEN"] = CANARY
    yield {"secret_dir": str(secret_dir), "credentials": str(credentials), "victim": str(victim),
           "project_victim": str(project_victim), "port": listener.getsockname()[1], "sock": unix_path,
           "connections": connections, "home": str(Path.home()), "top_level": repr(sorted(allowed_top_level())),
           "tmp_shown": repr(sorted(interpreter_paths_under_tmp())),
           "etc": repr(sorted(ETC_ENTRIES))}
    stop.set()
    thread.join()
    os.environ.pop("QVR_CANARY_TOKEN", None)
    for path in (credentials, victim, project_victim, runs_canary, Path(unix_path)):
        path.unlink(missing_ok=True)


@pytest.fixture(scope="module", params=["shared", "split"])
def verifier(request, host):
    """Both modes: ``shared`` (one isolated child) and ``split`` (solution and checker children)."""
    sandbox = SandboxConfig(memory_mb=512, cpu_s=3, disk_mb=16, max_file_mb=4, max_open_files=64, max_processes=32,
                            hidden_paths=[host["secret_dir"]])
    with Verifier(VerifierConfig(timeout_s=6, isolation=request.param, sandbox=sandbox), slots=1) as verifier:
        yield verifier


BELL = Task(task_id="bell", family="test", harness="unittest", prompt="", tests="""import unittest
from qiskit.quantum_info import Statevector

class TestBell(unittest.TestCase):
    def test_two_qubits(self):
        self.assertEqual(qc.num_qubits, 2)

    def test_state(self):
        self.assertTrue(Statevector(qc).equiv(Statevector([2 ** -0.5, 0, 0, 2 ** -0.5])))
""")
BELL_SOLUTION = "from qiskit import QuantumCircuit\nqc = QuantumCircuit(2)\nqc.h(0)\nqc.cx(0, 1)\n"
PROGRAM = Task(task_id="program", family="test", harness="program", prompt="", tests="")
LEAK = "import sys\ndef leak(what):\n    print('LEAK ' + what, file=sys.stderr)\n"


def allowed_top_level() -> set[str]:
    """What the sandbox's / may hold: system folders, /etc, /dev, /proc, /tmp, and the first
    component of each path the interpreter lives in (its prefixes and sys.path)."""
    names = {path.strip("/") for path in SYSTEM_PATHS} | {"etc", "dev", "proc", "tmp"}
    for path in (sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path):
        for form in (os.path.abspath(path), os.path.realpath(path)) if path else ():
            names.add(form.strip("/").split("/")[0])
    return names


def interpreter_paths_under_tmp() -> set[str]:
    """The interpreter's folders that lie under /tmp (a checkout there with its .venv): the sandbox
    shows them there, with the empty folders on their way, and nothing else of /tmp."""
    paths = set()
    for path in (sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path):
        for form in (os.path.abspath(path), os.path.realpath(path)) if path else ():
            if form.startswith("/tmp/") and Path(form).exists():
                paths.add(form)
    # The project is never shown, even on sys.path (pytest's root); its .venv is.
    venv = os.path.realpath(sys.prefix)
    return {path for path in paths if not (Path(path).is_relative_to(ROOT.resolve()) and not path.startswith(venv))}


# The project as a candidate finds it: through the path of a module already in memory.
FIND_PROJECT = "import actors, os\nproject = os.path.dirname(os.path.dirname(actors.__file__))\n"

# name -> (task, code, allowed statuses)
ATTACKS = {
    "fork_bomb": (PROGRAM, "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
                  {"timeout", "killed", "failed"}),
    "memory_bomb": (PROGRAM, "x = bytearray(8 * 1024 ** 3)\n", {"failed"}),
    "memory_growth": (PROGRAM, "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024 ** 2))\n", {"failed"}),
    "busy_loop": (PROGRAM, "while True:\n    pass\n", {"timeout", "killed"}),
    "sleep_ignoring_sigxcpu": (PROGRAM, "import signal, time\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\ntime.sleep(1000)\n",
                               {"timeout"}),
    "spin_ignoring_sigxcpu": (PROGRAM, "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\n",
                              {"killed", "timeout"}),
    "huge_file": (PROGRAM, "open('big', 'wb').write(b'x' * 64 * 1024 ** 2)\n", {"failed", "killed"}),
    "many_files": (PROGRAM, "for i in range(200000):\n    open(f'f{{i}}', 'w').close()\n", {"failed"}),
    "stdout_flood": (PROGRAM, "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", {"timeout", "killed"}),
    "stderr_flood": (PROGRAM, "import sys\nfor _ in range(20000):\n    sys.stderr.write('y' * 65536)\nraise SystemExit(1)\n",
                     {"failed", "timeout"}),
    "read_own_environ": (PROGRAM, LEAK + "data = open('/proc/self/environ', 'rb').read()\n"
                                         "if b'CANARY' in data: leak('environ')\n", {"passed"}),
    "read_every_environ": (PROGRAM, LEAK + "import os\nfor pid in [p for p in os.listdir('/proc') if p.isdigit()] + ['{zygote}']:\n"
                                           "    try:\n        data = open(f'/proc/{{pid}}/environ', 'rb').read()\n"
                                           "    except OSError:\n        continue\n"
                                           "    if b'CANARY' in data: leak('environ of ' + pid)\n", {"passed"}),
    "read_parent_memory": (PROGRAM, LEAK + "try:\n    open('/proc/{zygote}/mem', 'rb').read(1)\n    leak('mem')\n"
                                           "except OSError:\n    pass\n", {"passed"}),
    "home_credentials": (PROGRAM, LEAK + "try:\n    data = open('{credentials}').read()\nexcept OSError:\n    data = ''\n"
                                         "if 'CANARY' in data: leak('credentials')\n", {"passed"}),
    "hidden_task_file": (PROGRAM, LEAK + "try:\n    data = open('{secret_dir}/tasks.jsonl').read()\nexcept OSError:\n    data = ''\n"
                                         "if 'CANARY' in data: leak('tasks')\n", {"passed"}),
    "outbound_tcp": (PROGRAM, LEAK + "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
                                     "    leak('tcp')\nexcept OSError:\n    pass\n", {"passed"}),
    "host_unix_socket": (PROGRAM, LEAK + "import socket\ntry:\n    s = socket.socket(socket.AF_UNIX)\n    s.connect('{sock}')\n"
                                         "    leak('unix')\nexcept OSError:\n    pass\n", {"passed"}),
    "network_interfaces": (PROGRAM, LEAK + "names = [line.split(':')[0].strip() for line in open('/proc/net/dev').readlines()[2:]]\n"
                                           "if names != ['lo']: leak('interfaces ' + repr(names))\n", {"passed"}),
    "socketpair": (PROGRAM, LEAK + "import socket\ntry:\n    socket.socketpair()\n    leak('socketpair')\nexcept OSError:\n    pass\n",
                   {"passed"}),
    "signal_zygote": (PROGRAM, LEAK + "import os\ntry:\n    os.kill({zygote}, 9)\n    leak('kill')\nexcept OSError:\n    pass\n",
                      {"passed"}),
    "signal_everyone": (PROGRAM, LEAK + "import os\ntry:\n    os.kill(-1, 9)\n    leak('kill -1')\nexcept OSError:\n    pass\n",
                        {"passed"}),
    "ptrace_zygote": (PROGRAM, LEAK + "import ctypes\nlibc = ctypes.CDLL(None)\n"
                                      "if libc.ptrace(16, {zygote}, 0, 0) == 0: leak('ptrace')\n", {"passed"}),
    "unshare_escape": (PROGRAM, LEAK + "import ctypes\nlibc = ctypes.CDLL(None)\n"
                                       "if libc.unshare(0x10000000) == 0: leak('unshare')\n", {"passed"}),
    "mount_tmpfs": (PROGRAM, LEAK + "import ctypes\nlibc = ctypes.CDLL(None)\n"
                                    "if libc.mount(b'x', b'/usr', b'tmpfs', 0, None) == 0: leak('mount')\n", {"passed"}),
    "setsid_daemon": (PROGRAM, "import os\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                               "        os.execv('/bin/sleep', ['sleep', '876.5'])\n    os._exit(0)\n", {"passed"}),
    "os_exit_before_asserts": (BELL, "import os\nos._exit(0)\n", {"failed"}),
    "fake_pass_markers": (BELL, "print('Ran 2 tests in 0.001s\\n\\nOK')\n"
                                "print('{{\"tests_passed\": 2, \"tests_total\": 2, \"error\": null}}')\nqc = None\n", {"failed"}),
    "project_through_package_path": (PROGRAM, LEAK + FIND_PROJECT
                                     + "for rel in ('pipelines/tasks/examples/qiskit-basics.jsonl', 'pyproject.toml', "
                                     "'README.md', 'configs/grpo-smoke.yaml', 'tests/conftest.py', 'runs/qvr-attack-canary.txt', "
                                     "'.qvr-attack-victim', 'actors/verify/sandbox/zygote.py'):\n"
                                     "    try:\n        open(os.path.join(project, rel)).read(1)\n        leak('read ' + rel)\n"
                                     "    except OSError:\n        pass\n"
                                     "listing = os.listdir(project) if os.path.isdir(project) else []\n"
                                     "if set(listing) - {{'.venv'}}: leak('project listing ' + repr(listing))\n", {"passed"}),
    "import_template_library": (PROGRAM, LEAK + "import importlib.util\n"
                                "for name in ('pipelines', 'pipelines.tasks.templates', 'pipelines.tasks.loader'):\n"
                                "    try:\n        __import__(name)\n        leak('imported ' + name)\n"
                                "    except ImportError:\n        pass\n", {"passed"}),
    "editable_install_paths": (PROGRAM, LEAK + "import glob, os, re, site\n"
                               "for folder in site.getsitepackages():\n"
                               "    for name in glob.glob(os.path.join(folder, '*.pth')) + glob.glob(os.path.join(folder, '__editable__*')):\n"
                               "        for path in set(re.findall(r'(/[\\w.+-][\\w./+-]*)', open(name).read())):\n"
                               "            for rel in ('pipelines/tasks/examples/qiskit-basics.jsonl', 'tasks/examples/qiskit-basics.jsonl', "
                               "'examples/qiskit-basics.jsonl', 'pyproject.toml', 'tasks/templates/__init__.py'):\n"
                               "                if os.path.isfile(os.path.join(path, rel)):\n"
                               "                    leak('file ' + os.path.join(path, rel))\n"
                               "            if os.path.basename(path) in ('pipelines', 'actors') and os.path.isdir(path) and os.listdir(path):\n"
                               "                leak('listed ' + path)\n", {"passed"}),
    "runs_directory": (PROGRAM, LEAK + FIND_PROJECT + "for where in (os.path.join(project, 'runs'), 'runs', '../runs'):\n"
                       "    if os.path.isdir(where):\n        leak('runs at ' + where + ': ' + repr(os.listdir(where)[:5]))\n",
                       {"passed"}),
    "view_is_an_allow_list": (PROGRAM, LEAK + "import os\n"
                              "extra = set(os.listdir('/')) - set({top_level})\n"
                              "if extra: leak('top level ' + repr(sorted(extra)))\n"
                              "extra = set(os.listdir('/etc')) - set({etc})\n"
                              "if extra: leak('etc ' + repr(sorted(extra)))\n"
                              "shown = {tmp_shown}\n"  # an interpreter under /tmp: the folders on its way, empty
                              "for path in ('/tmp', os.getcwd()):\n"
                              "    for folder, folders, files in os.walk(path):\n"
                              "        if any(folder == s or folder.startswith(s + '/') for s in shown):\n"
                              "            folders[:] = []\n"
                              "            continue\n"
                              "        if files: leak('files in ' + folder + ': ' + repr(files[:5]))\n"
                              "        for name in folders:\n"
                              "            inner = os.path.join(folder, name)\n"
                              "            if not any(s == inner or s.startswith(inner + '/') for s in shown):\n"
                              "                leak('folder ' + inner)\n"
                              "for path in ('/run', '/var', '/home', '/mnt', '/opt/.qvr', '/sys', '/root/.ray'):\n"
                              "    if os.path.exists(path) and os.listdir(path): leak('host folder ' + path)\n", {"passed"}),
    "write_outside_workdir": (PROGRAM, LEAK + "import os\n"
                              "for path in ('/etc/qvr', '/usr/qvr', '/qvr', '/dev/qvr', '/root/qvr'):\n"
                              "    try:\n        open(path, 'w').write('x')\n        leak('wrote ' + path)\n"
                              "    except OSError:\n        pass\n", {"passed"}),
    "delete_outside_workdir": (PROGRAM, "import os\nfor path in ('{victim}', '{project_victim}'):\n    try:\n"
                                        "        os.remove(path)\n    except OSError:\n        pass\n", {"passed"}),
    "write_site_packages": (PROGRAM, "import qiskit\nopen(qiskit.__file__, 'a').write('# pwned')\n", {"failed"}),
    "exhaust_file_descriptors": (PROGRAM, "import os\nfds = []\nwhile True:\n    fds.append(os.open('/dev/null', os.O_RDONLY))\n",
                                 {"failed"}),
    "infinite_recursion": (PROGRAM, "def f():\n    return f()\nf()\n", {"failed"}),
    "unbounded_recursion_limit": (PROGRAM, "import sys\nsys.setrecursionlimit(10 ** 7)\ndef f(n):\n    return f(n + 1)\nf(0)\n",
                                  {"failed", "killed", "timeout"}),  # memory or the clock ends it, by load
    "lingering_threads": (PROGRAM, "import threading, time\nthreading.Thread(target=lambda: time.sleep(300)).start()\n"
                                   "threading.Thread(target=lambda: [0 for _ in iter(int, 1)]).start()\n", {"passed"}),
}


def descendants(pid: int) -> list[int]:
    children = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
    found, frontier = [], [pid]
    while frontier:
        for child in children.get(frontier.pop(), []):
            found.append(child)
            frontier.append(child)
    return found


def sandbox_uid_processes(uid: int) -> list[int]:
    """Processes running as ``uid`` (a zygote's sandbox uid: base + zygote pid mod 65536, its own)."""
    pids = []
    for entry in glob.glob("/proc/[0-9]*"):
        try:
            if os.stat(entry).st_uid == uid:
                pids.append(int(entry.rsplit("/", 1)[1]))
        except OSError:
            continue
    return pids


def process_state(pid: int) -> dict[str, int]:
    """What a healthy zygote keeps from job to job: its threads and its open descriptors."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {"threads": int(status["Threads"]), "fds": len(os.listdir(f"/proc/{pid}/fd"))}


@pytest.fixture(scope="module")
def healthy(verifier):
    """The zygote's state after a plain job, before any attack."""
    verdict = verifier.verify_one(VerificationJob(BELL, BELL_SOLUTION))
    assert verdict.status == "passed"
    return process_state(verifier.servers[0].pid)


def test_battery_has_enough_cases():
    assert len(ATTACKS) >= 25


@pytest.mark.skipif(os.geteuid() != 0, reason="as non-root each child gets a network namespace of its own")
def test_children_share_their_zygotes_empty_network_namespace(verifier):
    zygote = verifier.servers[0].pid
    assert os.readlink(f"/proc/{zygote}/ns/net") != os.readlink("/proc/self/ns/net")
    names = [line.split(":")[0].strip() for line in Path(f"/proc/{zygote}/net/dev").read_text().splitlines()[2:]]
    assert names == ["lo"]


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack(name, verifier, host, healthy):
    task, code, allowed = ATTACKS[name]
    zygote = verifier.servers[0]
    zygote_pid = zygote.pid
    before_mtime = os.stat(sys.modules["qiskit"].__file__).st_mtime if "qiskit" in sys.modules else None
    code = code.format(zygote=zygote_pid, **{key: value for key, value in host.items() if isinstance(value, (str, int))})
    verdict = verifier.verify_one(VerificationJob(task, code))

    if verifier.config.isolation == "split" and allowed & {"timeout", "killed"}:
        allowed = allowed | {"failed"}  # the checker outlives a stuck or killed solution and says so
    assert verdict.status in allowed, (verdict.status, verdict.stderr_tail[-800:])
    assert verdict.isolation == verifier.config.isolation
    assert "LEAK" not in verdict.stderr_tail, verdict.stderr_tail[-800:]
    assert verdict.duration_s < 6 + 5
    # The worker still serves, from the same zygote.
    assert zygote.pid == zygote_pid and zygote.restarts == 0
    # No process is left: nothing under the zygote, nothing running as a sandbox uid.
    deadline = time.monotonic() + 30  # a bound on failure only: a healthy zygote reaps at once
    uid = verifier.config.sandbox.sandbox_uid_base + zygote_pid % SANDBOX_UIDS
    while (descendants(zygote_pid) or sandbox_uid_processes(uid)) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert descendants(zygote_pid) == [], [(pid, Path(f"/proc/{pid}/stat").read_text()[:80],
                                            Path(f"/proc/{pid}/cmdline").read_bytes()[:80]) for pid in descendants(zygote_pid)]
    if os.geteuid() == 0:
        assert sandbox_uid_processes(uid) == []
    # No file is left, and nothing on the host changed.
    slot_dirs = glob.glob(f"/tmp/qvr-slot0-{zygote_pid}-*")  # this zygote's (another may serve another test)
    assert all(os.listdir(path) == [] for path in slot_dirs)
    assert glob.glob(f"/tmp/qvr-sandbox-{zygote_pid}-*") == []
    assert Path(host["victim"]).read_text() == "keep me"
    assert Path(host["project_victim"]).read_text() == "keep me"
    assert host["connections"] == []
    if before_mtime is not None:
        assert os.stat(sys.modules["qiskit"].__file__).st_mtime == before_mtime
    # The zygote is as it was: the same process, its threads and descriptors, and it serves the next job.
    assert process_state(zygote_pid) == healthy
    after = verifier.verify_one(VerificationJob(BELL, BELL_SOLUTION))
    assert after.status == "passed" and zygote.pid == zygote_pid and zygote.restarts == 0


# ---------------------------------------------------------------- what a candidate may find in memory

STALE = ("QVR-STALE-", "A1B2C3")
"""A canary in an earlier job's tests and reference, as two halves: the whole string never exists
in the candidate's own code, so finding it in memory means finding the earlier job."""
CURRENT = ("QVR-NOW-", "D4E5F6")
"""A canary in the current job's hidden tests."""
FAILED = ("QVR-FAIL-", "778899")
"""A canary in the assertion message an earlier candidate's failing test produced (what a
verdict's failures say, e.g. an expected value, must not reach the next sample of the task)."""

MEMORY_SCAN = """import ctypes, re, sys
def leak(what):
    print('LEAK ' + what, file=sys.stderr)
needles = {needles!r}
buffer = ctypes.create_string_buffer(1 << 22)
own = (ctypes.addressof(buffer), ctypes.addressof(buffer) + len(buffer))
def scan(start, end):
    hits = set()
    while start < end:
        size = min(len(buffer), end - start)
        ctypes.memmove(buffer, start, size)
        view = memoryview(buffer)[:size]
        for head, tail in needles:
            for match in re.finditer(re.escape(head.encode()), view):
                if bytes(view[match.end():match.end() + len(tail)]) == tail.encode():
                    hits.add(head)
        start += max(size - 64, 1) if size == len(buffer) else size
    return hits
found = set()
for line in open('/proc/self/maps'):
    fields = line.split()
    if fields[1][0] != 'r' or (len(fields) > 5 and fields[5].startswith('[v')):
        continue
    start, end = (int(x, 16) for x in fields[0].split('-'))
    if start >= own[1] or end <= own[0]:
        found |= scan(start, end)
    else:
        found |= scan(start, own[0]) | scan(own[1], end)
for head in sorted(found):
    leak('memory holds ' + head)
frame = sys._getframe() if {frames} else None
while frame is not None:
    for name, value in list(frame.f_locals.items()):
        if isinstance(value, dict) and value.get('tests'):
            leak('a frame holds tests in ' + name)
    frame = frame.f_back
value = 42
"""


def canary_task(task_id: str, halves: tuple[str, str], comment: bool = True) -> Task:
    canary = "".join(halves)
    tests = (f"{'# ' + canary if comment else ''}\nimport unittest\n\nclass TestValue(unittest.TestCase):\n"
             f"    def test_value(self):\n        self.assertEqual(value, 42, '{canary}')\n")
    return Task(task_id=task_id, family="test", harness="unittest", prompt="", tests=tests,
                reference_solution=f"value = 42  # {canary}\n")


@pytest.mark.parametrize("mode", ["shared", "split"])
def test_no_earlier_job_and_no_hidden_test_is_left_in_memory(mode):
    """The zygote never holds a job's code or tests as objects (sealed frames, wiped): a child
    that scans all of its memory finds nothing of the jobs before it (a reference solution and
    its tests; what a failing candidate's tests reported), and in split mode not even its own
    job's hidden tests, in memory or in a frame.
    In shared mode the tests run in the candidate's process, so there the scan must find them:
    the control that shows the scan sees what is there."""
    with Verifier(VerifierConfig(timeout_s=60, isolation=mode), slots=1) as verifier:
        earlier = canary_task("earlier", STALE)
        assert verifier.verify_one(VerificationJob(earlier, earlier.reference_solution)).status == "passed"
        failing = verifier.verify_one(VerificationJob(canary_task("failing", FAILED, comment=False), "value = 41\n"))
        assert failing.status == "failed" and "".join(FAILED) in failing.stderr_tail  # the parent got the message
        verdict = verifier.verify_one(VerificationJob(canary_task("now", CURRENT),
                                                      MEMORY_SCAN.format(needles=[STALE, FAILED, CURRENT], frames=True)))
    assert verdict.status == "passed", verdict.stderr_tail[-800:]
    leaks = {line for line in verdict.stderr_tail.splitlines() if line.startswith("LEAK")}
    if mode == "split":
        assert leaks == set(), leaks
    else:
        assert leaks == {"LEAK memory holds QVR-NOW-", "LEAK a frame holds tests in job"}, leaks


def test_a_reference_cannot_be_read_off_the_disk(verifier):
    """The attack measured on main: find the project through a module's path, read the example
    task file and exec its task's reference solution. It passed in split mode; it must fail."""
    from pipelines.tasks.loader import TaskSourceConfig, load_tasks

    task = next(task for task in load_tasks(TaskSourceConfig(source=str(EXAMPLES))) if task.task_id == "examples/bell-state")
    code = (FIND_PROJECT + "import json\n"
            "for line in open(os.path.join(project, 'pipelines/tasks/examples/qiskit-basics.jsonl')):\n"
            "    row = json.loads(line)\n"
            "    if row['task_id'] == 'examples/bell-state':\n"
            "        exec(row['reference_solution'])\n")
    assert verifier.verify_one(VerificationJob(task, task.reference_solution)).status == "passed"
    verdict = verifier.verify_one(VerificationJob(task, code))
    assert verdict.status == "failed", verdict.stderr_tail[-800:]
    assert "FileNotFoundError" in verdict.stderr_tail or "No such file" in verdict.stderr_tail, verdict.stderr_tail[-800:]
