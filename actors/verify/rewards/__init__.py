"""Rewards: a registry of named reward functions and their weighted sum, chosen per task family.

A reward function receives what the checker recorded (status, tests passed, each test's outcome,
named measures) with the raw completion, the extracted code and the task's family; no reward is
ever parsed from text the candidate could print. A new reward is one function in a module of this
package decorated with ``@reward("name")`` (:mod:`~actors.verify.rewards.registry`; with
``reads=(...)`` naming the measure providers whose measures it reads, ``settings=`` its settings
class, whose fields join RewardConfig, and ``families=`` the task families it scores by default),
that module's name in the import line below, then a weight in config:
``verifier.rewards.weights.name=0.5``, or for one family only,
``verifier.rewards.by_family.FAMILY.name=1.0``. The default follows the IBM paper ("Quantum
Verifiable Rewards for Post-Training Qiskit Code Assistant"): the fraction of unit tests passed
with weight 1.0 plus a format reward with weight 0.1.

Modules: ``registry`` (RewardInput, ``@reward``), ``measures`` (where each measure is taken: the
checker's requests and the parent's own providers), ``config`` (RewardConfig, built from the
registry, and ``score``), and the rewards: ``default`` (pass_fraction, binary, format),
``deprecation`` (a parent-side measure and its penalty), ``qspark`` (QSpark's multi-part reward),
``quasar`` (QUASAR's hierarchical reward).
"""

# The rewards. Each module registers its functions on import; the registry imports none of them.
from actors.verify.rewards import default, deprecation, qspark, quasar  # noqa: F401
