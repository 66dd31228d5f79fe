"""VerifierWorker: a Verifier (one warm zygote per slot) behind a Ray actor.

The VerifierPool creates it with ``ray.remote(concurrency_groups={"health": 1})`` and calls
``ping`` in that group: pings are answered on a thread of their own while ``verify_batch`` runs
in the default group (one batch at a time, in the order sent), so a worker busy with a long
batch is never taken for dead. The class itself stays plain and testable.
"""

from __future__ import annotations

import logging

from actors.contracts import Verdict
from actors.verify.config import VerifierConfig
from actors.verify.executor import VerificationJob
from actors.verify.verifier import Verifier


class VerifierWorker:
    def __init__(self, config: VerifierConfig, slots: int) -> None:
        logging.basicConfig(level=logging.INFO)
        self.verifier = Verifier(config, slots=slots)

    def verify_batch(self, keys: object, jobs: list[VerificationJob]) -> tuple[object, list[Verdict]]:
        """One verdict per job, in order; ``keys`` come back as they were (for unordered dispatch)."""
        return keys, self.verifier.run(jobs)

    def ping(self) -> bool:
        """Alive and constructed (its zygotes are up). The pool calls it in the ``health`` group."""
        return True

    def close(self) -> None:
        self.verifier.close()
