"""Verification: run a completion with its task's hidden tests and turn the outcome into a Verdict.

The driver side, in the parent: ``config`` (VerifierConfig), ``extract`` (the code in an answer),
``executor`` (how a child is started, its record read into a verdict), ``forkserver`` (one warm
zygote per slot), ``verifier`` (the parallel Python API), ``feedback`` (between turns); the
packages ``rewards/`` (a verdict's reward), ``pool/`` (VerifierPool, the verification service on
Ray) and ``qpu/`` (the QPU gateway). ``sandbox/`` is what runs in the zygote and its children: it
imports nothing of the driver side (the contracts in pyproject.toml).
"""
