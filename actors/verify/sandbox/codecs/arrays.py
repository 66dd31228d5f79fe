"""numpy arrays and scalars: dtype (numeric and bool only), shape and raw bytes."""

from __future__ import annotations

import base64

import numpy as np

from actors.verify.sandbox.codecs.registry import Codec, register

ALLOWED_KINDS = "biufc"  # bool, int, unsigned, float, complex: never object arrays
MAX_BYTES = 64 * 1024 * 1024


def encode_array(value, _=None) -> dict:
    array = np.ascontiguousarray(value)
    if array.dtype.kind not in ALLOWED_KINDS:
        raise TypeError(f"array of dtype {array.dtype} cannot cross")
    return {"dtype": array.dtype.str, "shape": list(array.shape), "b64": base64.b64encode(array.tobytes()).decode()}


def decode_array(data, _=None) -> np.ndarray:
    dtype = np.dtype(str(data["dtype"]))
    if dtype.kind not in ALLOWED_KINDS or dtype.hasobject:
        raise ValueError(f"dtype {dtype} may not cross")
    shape = tuple(int(n) for n in data["shape"])
    if any(n < 0 for n in shape) or len(shape) > 32:
        raise ValueError("bad shape")
    raw = data["b64"]
    if type(raw) is not str or len(raw) > MAX_BYTES * 4 // 3 + 4:
        raise ValueError("array too large")
    buffer = base64.b64decode(raw, validate=True)
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if count * dtype.itemsize != len(buffer):
        raise ValueError("array data does not match its shape")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape).copy()


register(Codec("ndarray", (np.ndarray,), encode_array, decode_array))
register(Codec("npscalar", (np.generic,), lambda value, child: {"v": child(value.item())}, lambda data, child: child(data["v"])))
