"""The QPU gateway: one named Ray actor through which every job reaches a quantum backend, under
IBM's limits. Modules: ``gateway`` (the actor and its per-backend queues), ``config`` (QpuConfig,
QpuLimits), ``budget`` (QPU seconds per run and step: the gateway's ledger, the parent's record of
a refusal), ``errors``, ``runners`` (fake backends, IBM hardware: the only place the token is
read), ``evidence`` (a recording fake backend and the checks of its record against the limits),
``figures`` (QPU seconds and refusals as jobs report them).
Nothing of it runs in the sandbox: a sandbox reaches it through ``sandbox/qpu_shim.py`` and its
verifier slot (:func:`~actors.verify.qpu.gateway.gateway_handler`).
"""
