"""Shot-noise-aware verdicts: a test that compares measured counts or expectation values with a
tolerance passes with a probability, not a certainty.

:mod:`~actors.verify.noise.stochastic` says which jobs are draws (and so are never cached);
:mod:`~actors.verify.noise.band` which of their verdicts may be re-measured;
:mod:`~actors.verify.noise.interval` the Clopper-Pearson rule that says when a pass probability is
settled; :mod:`~actors.verify.noise.settle` runs a job again, in fresh sandbox children, until it
is; :mod:`~actors.verify.noise.references` flags references that do not pass k of k runs at
calibration; :mod:`~actors.verify.noise.provenance` checks the record of the simulator runs
(backend, noise model, shots, seed) that the sandbox writes (actors/verify/sandbox/provenance.py).
Settings: :class:`~actors.verify.noise.config.NoiseConfig` (``verifier.noise``).
"""
