"""The verification service: :class:`~actors.verify.pool.pool.VerifierPool` spreads jobs over
VerifierWorker Ray actors (``worker``), its state in ``records``, sized by PoolConfig (``config``,
light: a job validates it without importing Ray or the pool).
"""
