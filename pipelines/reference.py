"""The configuration reference: every job's fields as markdown, from the config models themselves.

``qvr config reference [--output FILE]`` prints (or writes) it; docs/configuration.md is its output
and tests/test_docs.py fails when that file is stale. Each dotted field shows what it accepts, its
default in that job and its attribute docstring (``use_attribute_docstrings``, actors/config.py).
A model that several jobs use (VerifierConfig, PoolConfig, RolloutConfig ...) is documented once
under "Shared sections"; where a job's default for it differs from the section's, the job's row
says which values differ. The output depends on the code alone (registry order, field order,
sections by name), so regenerating it gives the same bytes.

Like every job module, this imports only pydantic/yaml at top level.
"""

from __future__ import annotations

import json
import sys
import typing
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined, to_jsonable_python

from pipelines.config import _strip_optional, describe_allowed, union_models
from pipelines.jobs import JOBS, job_module

COMMAND = "qvr config reference --output docs/configuration.md"
_Row = tuple[str, str, str, str]  # key, type, default, description


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


def _shared_models() -> set[type[BaseModel]]:
    """Models reached from the configs of two jobs or more."""
    users: dict[type[BaseModel], set[str]] = defaultdict(set)

    def visit(model: type[BaseModel], job: str) -> None:
        for field in model.model_fields.values():
            for sub in _models_in(field.annotation):
                users[sub].add(job)
                visit(sub, job)

    for job in JOBS:
        visit(job_module(job).Config, job)
    return {model for model, jobs in users.items() if len(jobs) > 1}


def _anchor(model: type[BaseModel]) -> str:
    return model.__name__.lower()


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def _shown(value: Any) -> str:
    """A default as JSON; models inside containers are elided (``qvr config show`` prints them)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(key))}: {_shown(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    if isinstance(value, BaseModel):
        return "{...}"
    return json.dumps(to_jsonable_python(value))


def _default(field: Any) -> Any:
    """The field's own default (PydanticUndefined for a required field)."""
    return field.get_default(call_default_factory=True, validated_data={})


def _leaves(model: type[BaseModel], value: BaseModel | None = None, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> JSON value of every leaf of ``value`` (or, without one, of the model's own defaults)."""
    flat: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        item = getattr(value, name) if value is not None else _default(field)
        if isinstance(item, BaseModel):
            flat.update(_leaves(type(item), item, f"{prefix}{name}."))
        elif item is not PydanticUndefined:
            flat[prefix + name] = to_jsonable_python(item)
    return flat


def _differences(model: type[BaseModel], value: Any) -> str:
    """'here: a = 1, b.c = 2': where a job's default for a shared model differs from the model's own."""
    if not isinstance(value, BaseModel):
        return ""
    own = _leaves(model)
    changed = [f"{key} = {json.dumps(item)}" for key, item in _leaves(model, value).items()
               if key not in own or own[key] != item]
    return _cell("here: " + ", ".join(f"`{item}`" for item in changed)) if changed else ""


def _rows(model: type[BaseModel], shared: set[type[BaseModel]], defaults: BaseModel | None,
          prefix: str = "", skip: type[BaseModel] | None = None) -> list[_Row]:
    """Rows for the fields of ``model`` under ``prefix``; a shared model (but ``skip``) is a link."""
    rows: list[_Row] = []
    for name, field in model.model_fields.items():
        key = prefix + name
        value = getattr(defaults, name) if defaults is not None else _default(field)
        annotation, nullable = _strip_optional(field.annotation)
        description = _cell(field.description or "")
        nested = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        members = union_models(annotation) if nested is None else []
        mapped = None
        if typing.get_origin(annotation) is dict:
            mapped = next(iter(_models_in(typing.get_args(annotation)[1])), None)
        if nested is not None and nested in shared and nested is not skip:
            kind = f"[`{nested.__name__}`](#{_anchor(nested)})" + (" or null" if nullable else "")
            shown = _differences(nested, value) if value is not None else "`null`"
            rows.append((_code(key), kind, shown, description))
        elif nested is not None:
            kind = f"`{nested.__name__}`" + (" or null" if nullable else "")
            rows.append((_code(key), kind, "`null`" if value is None else "", description))
            rows += _rows(nested, shared, value if isinstance(value, BaseModel) else None, key + ".")
        elif members:  # a discriminated union: each member's fields in turn
            kind = "one of " + ", ".join(f"`{member.__name__}`" for member in members)
            rows.append((_code(key), kind, "`null`" if value is None else "", description))
            for member in members:
                rows += _rows(member, shared, value if isinstance(value, member) else None, key + ".")
        elif mapped is not None:
            link = f"[`{mapped.__name__}`](#{_anchor(mapped)})" if mapped in shared else f"`{mapped.__name__}`"
            rows.append((_code(key), f"a mapping of names to {link}", _code(_shown(value)), description))
            if mapped not in shared:
                rows += _rows(mapped, shared, None, key + ".NAME.")
        else:
            kind = _cell(describe_allowed(field.annotation, field.metadata))
            shown = "required" if value is PydanticUndefined else _code(_shown(value))
            rows.append((_code(key), kind, shown, description))
    return rows


def _table(rows: list[_Row]) -> list[str]:
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    return lines + [f"| {' | '.join(row)} |" for row in rows]


def _doc(model: type[BaseModel]) -> str:
    """The first paragraph of the model's own docstring."""
    return " ".join((model.__dict__.get("__doc__") or "").split("\n\n")[0].split())


def _uses(model: type[BaseModel], tables: dict[str, list[_Row]]) -> str:
    """'`pool` in qvr verify, qvr synth; ...': each key that links to ``model`` and where it is."""
    where: dict[str, list[str]] = {}
    for source, rows in tables.items():
        for key, kind, _, _ in rows:
            if f"(#{_anchor(model)})" in kind:
                where.setdefault(key, []).append(source)
    return "; ".join(f"{key} in {', '.join(sources)}" for key, sources in where.items())


def reference_markdown() -> str:
    """The whole reference, as docs/configuration.md holds it."""
    shared = sorted(_shared_models(), key=lambda model: model.__name__)
    jobs = {f"`qvr {job}`": _rows(job_module(job).Config, set(shared), None) for job in JOBS}
    sections = {f"`{model.__name__}`": _rows(model, set(shared), None, skip=model) for model in shared}
    lines = [
        "# Configuration reference",
        "",
        "Every job's config fields, generated from the typed config models and their field docstrings",
        f"by `{COMMAND}`: do not edit by hand (`tests/test_docs.py` fails when this file is stale).",
        "",
        "A job's config resolves from the defaults below, then the YAML preset (`--config`, see",
        "`configs/`), then `KEY=VALUE` overrides with the dotted keys below (`verifier.timeout_s=30`).",
        "`qvr config show JOB [--config FILE] [KEY=VALUE ...]` prints a resolved config in full.",
        "A model that several jobs share is documented once under [Shared sections](#shared-sections);",
        "where a job's default for it differs from the section's, the job's row says `here: KEY = VALUE`.",
        "",
        "Jobs: " + ", ".join(f"[`{job}`](#qvr-{job})" for job in JOBS) + ".",
        "",
        "## Jobs",
        "",
    ]
    for job, (title, rows) in zip(JOBS, jobs.items()):
        lines += [f"### {title}", "", JOBS[job].help + ".", ""] + _table(rows) + [""]
    lines += ["## Shared sections", ""]
    for model, (title, rows) in zip(shared, sections.items()):
        lines += [f"### {title}", ""] + ([_doc(model), ""] if _doc(model) else [])
        uses = _uses(model, {**jobs, **sections})
        lines += [f"`{model.__module__}.{model.__qualname__}`, used as {uses}.", ""] + _table(rows) + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def write_reference(output: str | None) -> int:
    """``qvr config reference``: the markdown to ``output``, or to standard output."""
    text = reference_markdown()
    if output:
        Path(output).write_text(text)
        print(f"wrote {output}")
    else:
        sys.stdout.write(text)
    return 0
