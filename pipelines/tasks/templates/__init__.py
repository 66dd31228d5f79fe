"""Synthetic Qiskit tasks rendered from seeded templates.

The template contract
---------------------
A template is a function ``build(rng: random.Random) -> Draft`` registered with
``@template(name, area)`` in one of the area modules below. From the seeded generator it draws
the task's parameters (qubit counts, angles, targets, gates, shots, ...) and returns a
:class:`Draft` holding:

- ``prompts``: two or more wordings of the same task; each names every variable or function the
  program must define (``qc``, ``counts``, ``transpiled``, ``energy(params)``, ...), because the
  tests read exactly those names;
- ``tests``: unittest source (one or more ``unittest.TestCase`` classes) exec'd after the program
  in the same namespace. Tests check behaviour (Statevector/Operator equivalence, distributions
  with tolerances, round-trips, option values), never the program's spelling, and fix every seed
  (``seed_simulator``, ``seed_transpiler``) so that a correct program never fails by chance;
- ``reference``: a correct program, fast (well under a second in the verifier);
- ``mutants``: at least two small wrong variants of the reference (:class:`Mutant`, with a kind
  such as ``wrong_gate``, ``wrong_qubit``, ``wrong_parameter``, ``missing_step``) that the tests
  must reject: they prove the tests discriminate;
- ``features``: ``num_qubits``, ``gate_count`` and ``concepts``, from which
  :func:`difficulty_from` derives the difficulty for every template alike;
- ``isolation`` (optional): ``"shared"`` when the tests must inspect an object that cannot cross
  to the verifier's separate checker process (the runtime-options tasks read a primitive's
  options); it becomes the task's ``metadata["isolation"]``.

Tests read only the names the program defines and never bind those names themselves (the
verifier's split mode passes the tests exactly the program values of the names they read).

:func:`render` (name, seed) -> (Task, mutants) is deterministic: the same pair always gives equal
results, because templates draw only from the ``random.Random(seed)`` they are given. A template
that fails raises :class:`TemplateError` naming the template and the seed.

Adding a template is one decorated function in the module of its area; importing this package
imports every area module, which fills :data:`TEMPLATES`.
"""

from pipelines.tasks.templates.difficulty import DIFFICULTIES, difficulty_from
from pipelines.tasks.templates.registry import (
    MUTANT_KINDS,
    TEMPLATES,
    Draft,
    Mutant,
    Template,
    TemplateError,
    areas,
    render,
    template,
)

# Imported for their side effect: each module registers its area's templates.
from pipelines.tasks.templates import (  # noqa: E402,F401  isort: skip
    algorithms,
    circuits,
    dynamic_circuits,
    error_correction,
    library,
    measurement,
    noise,
    parameters,
    primitives,
    quantum_info,
    runtime_options,
    serialization,
    transpilation,
)

__all__ = ["DIFFICULTIES", "MUTANT_KINDS", "TEMPLATES", "Draft", "Mutant", "Template", "TemplateError", "areas",
           "difficulty_from", "render", "template"]
