"""Data codecs: how values cross between the solution child and the checker, never as pickles.

A value is encoded to JSON-able data (tagged with ``"$"``) by the codec registered for the first
class in its MRO that has one, and decoded by building fresh objects of exact, trusted types
from that data. The decoder is the security boundary: it runs in the clean checker on bytes the
untrusted solution child produced, so it only ever builds plain values (an ``int`` subclass
with its own ``__eq__`` comes back as a plain ``int``), Qiskit objects rebuilt from their data
(QPY for circuits, arrays for quantum_info types), and bounded structures (depth and size).

One small module per family registers its codecs (:mod:`~actors.verify.sandbox.codecs.registry`);
a new family is one module and its name in the import line here.
"""

# The families. Each module registers its codecs on import.
from actors.verify.sandbox.codecs import arrays, backends, circuits, plain, primitives, quantum_info, transpiler  # noqa: F401
