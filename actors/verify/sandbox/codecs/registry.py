"""The codec registry: a :class:`Codec` per family of values, and :func:`encode` / :func:`decode`
(the security boundary: see the package's docstring). It imports none of the families: each
registers its codecs, and the package loads them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 48
MAX_NODES = 2_000_000


class CannotCross(ValueError):
    """A value that no codec accepts, or data that does not decode into one."""


@dataclass(frozen=True)
class Codec:
    tag: str
    types: tuple[type, ...]
    encode: Callable[[Any, Callable[[Any], Any]], dict[str, Any]]
    """value, encode-a-child -> the data (without the tag)."""
    decode: Callable[[dict[str, Any], Callable[[Any], Any]], Any]
    """data, decode-a-child -> a fresh object of a trusted type."""


_BY_TAG: dict[str, Codec] = {}
_BY_TYPE: dict[type, Codec] = {}


def register(codec: Codec) -> Codec:
    if codec.tag in _BY_TAG:
        raise ValueError(f"codec tag {codec.tag!r} is registered twice")
    _BY_TAG[codec.tag] = codec
    for kind in codec.types:
        _BY_TYPE[kind] = codec
    return codec


def codec_for(value: Any) -> Codec | None:
    for kind in type(value).__mro__:
        codec = _BY_TYPE.get(kind)
        if codec is not None:
            return codec
    return None


def encode(value: Any) -> Any:
    """JSON-able data for ``value``; CannotCross names the first part that no codec accepts."""
    nodes = [0]

    def walk(item: Any, depth: int) -> Any:
        nodes[0] += 1
        if depth > MAX_DEPTH or nodes[0] > MAX_NODES:
            raise CannotCross("value is too deeply nested or too large")
        if item is None or type(item) in (bool, str):
            return item
        if type(item) is int:
            return item if abs(item) < 2**53 else {"$": "bigint", "v": str(item)}
        codec = codec_for(item)
        if codec is None:
            raise CannotCross(f"no codec for {type(item).__module__}.{type(item).__qualname__}")
        try:
            return {"$": codec.tag, **codec.encode(item, lambda child: walk(child, depth + 1))}
        except CannotCross:
            raise
        except Exception as error:  # noqa: BLE001 - a codec refusing a value (wrong subclass, bad state)
            raise CannotCross(f"{codec.tag}: {error}") from None

    return walk(value, 0)


def decode(data: Any) -> Any:
    """Fresh trusted objects from data (raises CannotCross on anything unexpected)."""
    nodes = [0]

    def walk(item: Any, depth: int) -> Any:
        nodes[0] += 1
        if depth > MAX_DEPTH or nodes[0] > MAX_NODES:
            raise CannotCross("data is too deeply nested or too large")
        if item is None or type(item) in (bool, str):
            return item
        if type(item) is int:
            return item
        if type(item) is float:
            return item
        if type(item) is list:
            return [walk(child, depth + 1) for child in item]
        if type(item) is dict and type(item.get("$")) is str and item["$"] in _BY_TAG:
            try:
                return _BY_TAG[item["$"]].decode(item, lambda child: walk(child, depth + 1))
            except CannotCross:
                raise
            except Exception as error:  # noqa: BLE001 - malformed data of any kind
                raise CannotCross(f"malformed {item['$']}: {type(error).__name__}: {error}") from None
        raise CannotCross(f"unexpected data of type {type(item).__name__}")

    try:
        return walk(data, 0)
    except RecursionError:
        raise CannotCross("data is too deeply nested") from None
