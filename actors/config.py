"""The base of every typed config in qvr.

Each component owns a pydantic model next to its code; a job's config composes them.
Fields carry their documentation as attribute docstrings (``use_attribute_docstrings``), so
``qvr config show`` and error messages can explain a field where it is declared.
"""

from pydantic import BaseModel, ConfigDict


class Config(BaseModel):
    """Strict base: unknown keys are errors, assignments are validated, docstrings describe fields."""

    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=True,
        use_attribute_docstrings=True,
        frozen=False,
    )
