"""Task families in the pipelines layer: each module here registers one family's synth, row
reader, evaluation metrics and report section (:mod:`~pipelines.tasks.families.registry`).

A new family is a few modules, one in each layer it touches, each plus one line in its layer's
registry: here, a module with one ``register(Family(...))`` and its name in the import line
below; in the sandbox, its harness (actors/verify/sandbox/harnesses/: the code it extracts from an
answer, its tests and measures, its warm-up); in the parent, its rewards
(actors/verify/rewards/: their settings and the families they score by default). No other file
names it. QUASAR (``quasar``) is the worked example (docs/tasks.md, "Adding a task family").
"""

# The families. Each module registers its family on import; the registry imports none of them.
from pipelines.tasks.families import qiskit_templates, quasar  # noqa: F401
