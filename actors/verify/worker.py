"""VerifierWorker: a Verifier (one warm zygote per slot) behind a Ray actor.

Created with ``ray.remote(num_cpus=slots * cpus_per_slot)(VerifierWorker)`` by whoever needs
one (the `verify` job, later the VerifierPool), so the class itself stays plain and testable.
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

    def verify_batch(self, keys: list, jobs: list[VerificationJob]) -> tuple[list, list[Verdict]]:
        """``verify`` that hands the caller's keys back, for unordered dispatch (ray.util.ActorPool)."""
        return keys, self.verifier.run(jobs)

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        self.verifier.close()
