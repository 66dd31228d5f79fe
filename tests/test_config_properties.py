"""Property-based tests of override parsing: any value written as an override comes back typed."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field

from actors.config import Config
from pipelines.config import ConfigError, resolve_config, split_override


class Inner(Config):
    depth: int = 0
    """An integer."""
    ratio: float = Field(0.5, ge=0, le=1)
    """A bounded number."""


class Model(Config):
    count: int = 0
    """An integer."""
    scale: float = 1.0
    """A number."""
    flag: bool = False
    """A switch."""
    name: str = ""
    """Free text."""
    values: list[int] = []
    """Integers."""
    maybe: int | None = None
    """An integer or null."""
    weights: dict[str, float] = {}
    """Named numbers."""
    inner: Inner = Inner()
    """A nested model."""


settings.register_profile("qvr", max_examples=150, deadline=None)
settings.load_profile("qvr")


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_int_round_trip(value):
    assert resolve_config(Model, None, [f"count={value}"]).count == value


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_round_trip(value):
    assert resolve_config(Model, None, [f"scale={value!r}"]).scale == value


@given(st.booleans(), st.sampled_from([str, str.lower, str.upper]))
def test_bool_round_trip(value, spelling):
    assert resolve_config(Model, None, [f"flag={spelling(str(value))}"]).flag is value


@given(st.text())
def test_string_kept_verbatim(text):
    """A str field keeps the raw text: no YAML reading can turn '007', 'null' or 'a=b' into something else."""
    assert resolve_config(Model, None, [f"name={text}"]).name == text


@given(st.lists(st.integers(min_value=-1000, max_value=1000), max_size=8))
def test_list_round_trip(values):
    assert resolve_config(Model, None, [f"values=[{', '.join(map(str, values))}]"]).values == values


@given(st.one_of(st.none(), st.integers(min_value=-999, max_value=999)))
def test_optional_round_trip(value):
    text = "null" if value is None else str(value)
    assert resolve_config(Model, None, [f"maybe={text}"]).maybe == value


@given(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), st.floats(allow_nan=False, allow_infinity=False))
def test_dict_entry_override(key, value):
    assert resolve_config(Model, None, [f"weights.{key}={value!r}"]).weights == {key: value}


@given(st.floats(min_value=0, max_value=1), st.integers(min_value=0, max_value=100))
def test_nested_overrides(ratio, depth):
    config = resolve_config(Model, None, [f"inner.ratio={ratio!r}", f"inner.depth={depth}"])
    assert math.isclose(config.inner.ratio, ratio) and config.inner.depth == depth


@given(st.floats(allow_nan=False).filter(lambda x: not 0 <= x <= 1))
def test_out_of_range_is_an_error_naming_the_field(ratio):
    with pytest.raises(ConfigError, match=r"inner\.ratio"):
        resolve_config(Model, None, [f"inner.ratio={ratio!r}"])


@given(st.text().filter(lambda t: t.strip().lstrip("+-").isdigit() is False and t.strip() not in ("",)))
def test_non_integer_text_is_rejected(text):
    try:
        int(text.strip().replace("_", ""))
        return  # Python-parsable integers (e.g. '١', ' 3 ') are legitimately accepted
    except ValueError:
        pass
    try:
        if float(text.strip().replace("_", "")).is_integer():
            return  # integral numbers written as floats ('0.', '3.0') are ints to pydantic too
    except (ValueError, OverflowError):
        pass
    with pytest.raises(ConfigError, match=r"count"):
        resolve_config(Model, None, [f"count={text}"])


@given(st.lists(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True), min_size=1, max_size=4), st.text())
def test_split_override_round_trip(parts, value):
    key = ".".join(parts)
    assert split_override(f"{key}={value}") == (key, value)


@given(st.text().filter(lambda t: "=" not in t))
def test_override_without_equals_is_rejected(text):
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        split_override(text)
