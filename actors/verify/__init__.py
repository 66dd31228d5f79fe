"""Verification: run a completion with its task's hidden tests and turn the outcome into a Verdict.

Modules: ``config`` (VerifierConfig), ``harness`` (the test formats, run inside the child),
``executor`` (how a child is started), ``verifier`` (the parallel Python API).
"""
