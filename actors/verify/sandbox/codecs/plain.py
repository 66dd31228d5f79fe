"""Plain Python values: numbers, strings, bytes, lists, tuples, sets, dicts (any hashable keys)."""

from __future__ import annotations

import base64
import math

from actors.verify.sandbox.codecs.registry import Codec, register

MAX_BYTES = 16 * 1024 * 1024


def _float_encode(value, _):
    value = float(value)
    return {"v": value} if math.isfinite(value) else {"r": repr(value)}


def _float_decode(data, _):
    if "v" in data:
        return float(data["v"])
    if data["r"] not in ("nan", "inf", "-inf"):
        raise ValueError(f"not a float: {data['r']!r}")
    return float(data["r"])


register(Codec("float", (float,), _float_encode, _float_decode))
register(Codec("bigint", (), lambda value, _: {"v": str(int(value))}, lambda data, _: int(str(data["v"]), 10)))
register(Codec("complex", (complex,), lambda value, _: {"re": complex(value).real, "im": complex(value).imag},
               lambda data, _: complex(float(data["re"]), float(data["im"]))))


def _bytes_decode(data, _):
    raw = data["b64"]
    if type(raw) is not str or len(raw) > MAX_BYTES * 4 // 3 + 4:
        raise ValueError("bytes too large")
    return base64.b64decode(raw, validate=True)


register(Codec("bytes", (bytes, bytearray), lambda value, _: {"b64": base64.b64encode(bytes(value)).decode()},
               _bytes_decode))
register(Codec("list", (list,), lambda value, child: {"items": [child(item) for item in value]},
               lambda data, child: [child(item) for item in _items(data)]))
register(Codec("tuple", (tuple,), lambda value, child: {"items": [child(item) for item in value]},
               lambda data, child: tuple(child(item) for item in _items(data))))
register(Codec("set", (set, frozenset), lambda value, child: {"items": [child(item) for item in value]},
               lambda data, child: {child(item) for item in _items(data)}))
register(Codec("dict", (dict,), lambda value, child: {"items": [[child(k), child(v)] for k, v in value.items()]},
               lambda data, child: {child(k): child(v) for k, v in _pairs(data)}))


class _Callable:
    """Decoded marker: the name is a function of the candidate's; the checker calls it by proxy."""

    def __repr__(self) -> str:
        return "CALLABLE"


CALLABLE = _Callable()
register(Codec("callable", (), lambda value, _: {}, lambda data, _: CALLABLE))


def _items(data) -> list:
    items = data["items"]
    if type(items) is not list:
        raise ValueError("items must be a list")
    return items


def _pairs(data) -> list:
    pairs = _items(data)
    if not all(type(pair) is list and len(pair) == 2 for pair in pairs):
        raise ValueError("dict items must be pairs")
    return pairs
