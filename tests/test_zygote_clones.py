"""A verifier's slots share one warm-up: the first slot's zygote warms, then forks the others'
(actors/verify/sandbox/clones.py). Checked from the operating system's side (/proc): who is whose
child, sessions, CPU spent, processes left behind."""

import os
import signal
from pathlib import Path

import pytest

from actors.contracts import Task
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.verifier import Verifier

pytestmark = pytest.mark.slow


def stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name: state, ppid, pgrp, session, ... utime, stime."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_s(pid: int) -> float:
    fields = stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def alive(pid: int) -> bool:
    try:
        return stat(pid)[0] not in ("Z", "X")
    except OSError:
        return False


def job(code: str) -> VerificationJob:
    task = Task(task_id="clones/one", family="test", harness="program", prompt="", tests="",
                reference_solution="assert True\n")
    return VerificationJob(task, code)


QISKIT_JOB = ("from qiskit import QuantumCircuit, transpile\nfrom qiskit_aer import AerSimulator\n"
              "qc = QuantumCircuit(2)\nqc.h(0)\nqc.cx(0, 1)\nqc.measure_all()\n"
              "counts = AerSimulator().run(transpile(qc, AerSimulator()), shots=64).result().get_counts()\n"
              "assert sum(counts.values()) == 64\n")


def test_the_other_slots_are_forked_warm_from_the_first_and_serve_alike():
    with Verifier(VerifierConfig(timeout_s=60), slots=3) as verifier:
        first, *clones = [server.pid for server in verifier.servers]
        assert len({first, *clones}) == 3
        for pid in clones:
            fields = stat(pid)
            assert int(fields[1]) == first  # the first slot's zygote is its parent
            assert int(fields[3]) == pid != int(stat(first)[3])  # a session of its own, like the first's
        assert [server.features for server in verifier.servers] == [verifier.servers[0].features] * 3
        for slot in range(3):  # every slot runs Qiskit jobs in its sandbox
            verdict = verifier.verify_one(job(QISKIT_JOB), slot)
            assert verdict.status == "passed", (slot, verdict.stderr_tail)
        # The warm-up (importing Qiskit, Aer, the runtime; a first transpile) happened once: a clone
        # has spent a fraction of the first zygote's CPU time, jobs included.
        assert all(cpu_s(pid) < cpu_s(first) / 3 for pid in clones), [cpu_s(pid) for pid in (first, *clones)]
    assert not any(alive(pid) for pid in (first, *clones))  # closing ends the clones too


def test_a_dead_clone_is_replaced_by_a_zygote_of_its_own_and_the_other_slots_go_on():
    with Verifier(VerifierConfig(timeout_s=60), slots=2) as verifier:
        first, clone = (server.pid for server in verifier.servers)
        os.kill(clone, signal.SIGKILL)
        lost = verifier.verify_one(job("assert True\n"), 1)
        assert lost.status == "error"  # the job it held is reported, never passed
        replaced = verifier.servers[1]
        assert replaced.pid != clone and replaced.process is not None  # started cold, by the parent
        assert verifier.verify_one(job("assert True\n"), 1).status == "passed"
        assert verifier.servers[0].pid == first and verifier.verify_one(job("assert True\n"), 0).status == "passed"
