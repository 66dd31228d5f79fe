"""Resolve a job's typed config from a YAML preset plus ``a.b=c`` overrides.

Every problem is a :class:`ConfigError` whose message names where it came from (the file or the
override), the dotted field, the bad value and what is allowed; the CLI turns it into exit
status 2 before anything starts.

Overrides are parsed to the type of the field they name: the raw text is tried first (so a
``str`` field keeps ``"007"`` as it is and an ``int`` field takes ``"7"``), then its YAML reading
(lists, mappings, ``null``).
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")
_NULLS = {"null", "Null", "NULL", "~"}


class ConfigError(ValueError):
    """A config that cannot be used; the message says where, which field, what value and what is allowed."""


# ---------------------------------------------------------------- YAML


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (PyYAML would keep the last silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise ConfigError(f"line {mark.line + 1}: key {key!r} appears twice in one mapping")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML file; an empty file is an empty mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{path}{where}: broken YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of fields, got {type(data).__name__}")
    return data


# ---------------------------------------------------------------- types and fields


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    """(annotation without None, whether None is allowed)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        nullable = len(members) < len(typing.get_args(annotation))
        joined = members[0] if len(members) == 1 else typing.Union[tuple(members)]  # noqa: UP007 - built from a tuple
        return joined, nullable
    return annotation, False


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def union_models(annotation: Any) -> list[type[BaseModel]]:
    """The models a field may hold: ``[model]`` for a model, its members for a union of models
    (a discriminated union: the online job's ``algorithm``), ``[]`` otherwise."""
    if _is_model(annotation):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        # A member may carry its tag: Annotated[Model, Tag(...)] (actors.config.tagged_union).
        members = [typing.get_args(member)[0] if typing.get_origin(member) is typing.Annotated else member
                   for member in typing.get_args(annotation)]
        if all(_is_model(member) for member in members):
            return members
    return []


def _tags(model: type[BaseModel]) -> set[str]:
    """What pydantic may name a union member by in an error's location: its class name, or its
    discriminator's value (a field that holds one Literal value)."""
    tags = {model.__name__}
    for field in model.model_fields.values():
        if typing.get_origin(field.annotation) is typing.Literal and len(typing.get_args(field.annotation)) == 1:
            tags.add(str(typing.get_args(field.annotation)[0]))
    return tags


def _fields_of(models: list[type[BaseModel]]) -> list[str]:
    return list(dict.fromkeys(name for model in models for name in model.model_fields))


def _describe_type(annotation: Any) -> str:
    annotation, nullable = _strip_optional(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        text = "one of " + ", ".join(repr(arg) for arg in typing.get_args(annotation))
    elif annotation is bool:
        text = "true or false"
    elif annotation is int:
        text = "an integer"
    elif annotation is float:
        text = "a number"
    elif annotation in (str, Path):
        text = "a string"
    elif origin in (list, tuple, set):
        args = typing.get_args(annotation)
        text = "a list" + (f" of {_describe_type(args[0])}" if args else "")
    elif origin is dict:
        args = typing.get_args(annotation)
        text = "a mapping" + (f" of names to {_describe_type(args[1])}" if args else "")
    elif _is_model(annotation):
        text = "a mapping with keys " + ", ".join(annotation.model_fields)
    elif union_models(annotation):
        text = "a mapping, one of " + ", ".join(model.__name__ for model in union_models(annotation))
    else:
        text = str(annotation).replace("typing.", "")
    return text + (" or null" if nullable else "")


_CONSTRAINTS = (("gt", "> {}"), ("ge", ">= {}"), ("lt", "< {}"), ("le", "<= {}"),
                ("min_length", "length >= {}"), ("max_length", "length <= {}"))


def _describe_constraints(metadata: list[Any]) -> str:
    """'> 0 and <= 3600' from pydantic's annotated-types metadata (Gt, Le, MinLen ...)."""
    return " and ".join(template.format(getattr(item, name)) for item in metadata
                        for name, template in _CONSTRAINTS if getattr(item, name, None) is not None)


def describe_allowed(annotation: Any, metadata: list[Any] | None = None) -> str:
    constraints = _describe_constraints(metadata or [])
    return _describe_type(annotation) + (f", {constraints}" if constraints else "")


def _unknown_key(parent: str, key: str, allowed: list[str]) -> str:
    guess = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
    where = f"under {parent}" if parent else "at the top level"
    return f"unknown key {'.'.join(filter(None, [parent, key]))}{hint}; allowed keys {where}: {', '.join(allowed)}"


def field_at(model: type[BaseModel], dotted: str) -> tuple[Any, list[Any]]:
    """(annotation, constraint metadata) of a dotted field; an unknown key raises ConfigError."""
    annotation: Any = model
    metadata: list[Any] = []
    walked: list[str] = []
    for part in dotted.split("."):
        current, _ = _strip_optional(annotation)
        models = union_models(current)
        if models:
            owners = [model for model in models if part in model.model_fields]
            if not owners:
                raise ConfigError(_unknown_key(".".join(walked), part, _fields_of(models)))
            infos = [owner.model_fields[part] for owner in owners]
            # A key several members share (a union's tag) takes what any of them takes.
            types_ = tuple(dict.fromkeys(info.annotation for info in infos))
            if len(types_) == 1:
                annotation = types_[0]
            elif all(typing.get_origin(one) is typing.Literal for one in types_):
                annotation = typing.Literal[tuple(value for one in types_ for value in typing.get_args(one))]
            else:
                annotation = typing.Union[types_]  # noqa: UP007 - built from a tuple
            metadata = list(infos[0].metadata)
        elif typing.get_origin(current) is dict:
            annotation, metadata = typing.get_args(current)[1], []
        else:
            raise ConfigError(f"{'.'.join(walked)} is {_describe_type(annotation)}: it has no field {part!r}")
        walked.append(part)
    return annotation, metadata


# ---------------------------------------------------------------- overrides


def split_override(text: str) -> tuple[str, str]:
    """``a.b=c`` -> (``a.b``, ``c``); the value may contain ``=``."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. verifier.timeout_s=30")
    if not _KEY.match(key):
        raise ConfigError(f"override {text!r}: {key!r} is not a dotted field name like verifier.timeout_s")
    return key, value


def parse_override_value(annotation: Any, raw: str) -> Any:
    """The override's text as a value of the field's type (raises ValidationError if none fits)."""
    adapter = TypeAdapter(annotation)
    _, nullable = _strip_optional(annotation)
    if nullable and raw.strip() in _NULLS:
        return None
    try:
        return adapter.validate_python(raw)
    except ValidationError as raw_error:
        try:
            parsed = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise raw_error from None
        # A bool read from YAML only fits where the raw text already failed: never let 'true' become 1.
        if (isinstance(parsed, str) and parsed == raw) or isinstance(parsed, bool):
            raise
        return adapter.validate_python(parsed)


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _jsonable(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def apply_override(model: type[BaseModel], data: dict[str, Any], text: str) -> str:
    """Apply one ``a.b=c`` to the raw mapping ``data``; returns the dotted key."""
    key, raw = split_override(text)
    try:
        annotation, metadata = field_at(model, key)
    except ConfigError as error:
        raise ConfigError(f"override {text!r}: {error}") from None
    try:
        value = parse_override_value(annotation, raw)
    except ValidationError as error:
        message = error.errors()[0]["msg"]
        raise ConfigError(f"override {text!r}: {key}: bad value {raw!r}: {message}; "
                          f"allowed: {describe_allowed(annotation, metadata)}") from None
    _set_dotted(data, key, _jsonable(value))
    return key


# ---------------------------------------------------------------- resolution


def _error_path(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[str, list[str] | None]:
    """The dotted field of a pydantic error location (drops union-member tags pydantic adds), and the
    keys allowed where its last part is (None where that is no section)."""
    annotation: Any = model
    parts: list[str] = []
    allowed: list[str] | None = None
    for part in loc:
        current, _ = _strip_optional(annotation)
        models = union_models(current)
        allowed = _fields_of(models) if models else None
        tagged = [member for member in models if part in _tags(member)]
        if tagged and not any(part in member.model_fields for member in models):
            annotation = tagged[0]  # the member pydantic tried: its fields follow
            continue
        owner = next((member for member in models if part in member.model_fields), None)
        if owner is not None:
            annotation = owner.model_fields[part].annotation
        elif typing.get_origin(current) is dict:
            annotation = typing.get_args(current)[1]
        elif typing.get_origin(current) in (list, tuple) and isinstance(part, int):
            annotation = typing.get_args(current)[0] if typing.get_args(current) else Any
        elif _is_model(current) or typing.get_origin(current) is dict:
            parts.append(str(part))
            break
        else:
            break
        parts.append(str(part))
    return ".".join(parts), allowed


def format_validation_error(model: type[BaseModel], error: ValidationError, source: str,
                            overrides: dict[str, str]) -> str:
    lines: list[str] = []
    seen: set[str] = set()
    for item in error.errors():
        dotted, section_keys = _error_path(model, item["loc"])
        if dotted in seen:
            continue
        seen.add(dotted)
        origin = next((f"override {text!r}" for key, text in overrides.items()
                       if dotted == key or dotted.startswith(key + ".")), source)
        if item["type"] == "extra_forbidden":
            parent, _, key = dotted.rpartition(".")
            lines.append(f"{origin}: {_unknown_key(parent, key, section_keys or [])}")
            continue
        try:
            annotation, metadata = field_at(model, dotted)
            allowed = describe_allowed(annotation, metadata)
        except ConfigError:
            allowed = "see `qvr config show`"
        value = item.get("input")
        shown = "missing" if item["type"] == "missing" else f"bad value {value!r}"
        lines.append(f"{origin}: {dotted}: {shown}: {item['msg']}; allowed: {allowed}")
    return "\n".join(lines)


def resolve_config(model: type[BaseModel], path: str | Path | None = None,
                   overrides: list[str] | tuple[str, ...] = ()) -> BaseModel:
    """Defaults <- YAML file <- overrides, validated into ``model``."""
    data = load_yaml(path) if path is not None else {}
    source = str(path) if path is not None else "defaults"
    applied: dict[str, str] = {}
    problems: list[str] = []
    for text in overrides:
        try:
            applied[apply_override(model, data, text)] = text
        except ConfigError as error:
            problems.append(str(error))
    try:
        config = model.model_validate(data)
    except ValidationError as error:
        problems.append(format_validation_error(model, error, source, applied))
    if problems:
        raise ConfigError("\n".join(problems))
    return config


def dump_config(config: BaseModel) -> str:
    """The resolved config as YAML, in field order."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
