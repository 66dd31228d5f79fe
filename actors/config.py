"""The base of every typed config in qvr.

Each component owns a pydantic model next to its code; a job's config composes them.
Fields carry their documentation as attribute docstrings (``use_attribute_docstrings``), so
``qvr config show`` and error messages can explain a field where it is declared.
"""

import typing
from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Tag


class Config(BaseModel):
    """Strict base: unknown keys are errors, assignments are validated, docstrings describe fields."""

    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=True,
        use_attribute_docstrings=True,
        frozen=False,
    )


def tagged_union(*members: type[BaseModel], key: str = "name") -> Any:
    """The type of a section that is one of ``members``, told apart by their ``key`` (a field of one
    Literal value, e.g. ``name: Literal["grpo"] = "grpo"``): a discriminated union, as prime-rl's
    configs choose a loss. A section that does not say is the first member."""
    tags = [typing.get_args(member.model_fields[key].annotation)[0] for member in members]

    def tag_of(value: Any) -> Any:
        return value.get(key, tags[0]) if isinstance(value, dict) else getattr(value, key, None)

    tagged = tuple(Annotated[member, Tag(tag)] for member, tag in zip(members, tags))
    return Annotated[Union[tagged], Discriminator(tag_of)]  # noqa: UP007 - built from a tuple
