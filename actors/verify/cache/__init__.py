"""The verdict cache: a verdict is a function of what ran, so the same program against the same
tests, harness, backend, settings, verifier code and library versions is verified once.

:mod:`~actors.verify.cache.key` says what a verdict depends on (the key) and which verdicts may be
kept at all; :mod:`~actors.verify.cache.store` keeps them (sqlite); the
:class:`~actors.verify.pool.pool.VerifierPool` consults it before a job reaches a worker and answers
identical jobs in flight at once with one run (single flight). :mod:`~actors.verify.cache.figures`
turns verdicts into the hit rate and the seconds saved that jobs report.
"""
