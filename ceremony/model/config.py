"""Strict YAML: no implicit dates, no duplicate keys, and models whose errors name the field."""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from ceremony.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def iso_date(value: str) -> str:
    """A calendar date written YYYY-MM-DD (kept as text: YAML's own date parsing is switched off)."""
    if not re.match(r"^\d{4}-\d{2}-\d{2}$", value):
        raise ValueError(f"must be a date YYYY-MM-DD (got {value!r})")
    date.fromisoformat(value)
    return value


#: A model field holding such a date.
IsoDate = Annotated[str, AfterValidator(iso_date)]


class Strict(BaseModel):
    """Base of every model read from a file: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without timestamp resolution (dates stay strings) and with duplicate-key errors."""


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def data_dir() -> Path:
    """The shipped data (profiles, policy, example ceremonies): ``CEREMONY_DATA`` or the checkout's data/."""
    return Path(os.environ.get("CEREMONY_DATA", Path(__file__).resolve().parents[2] / "data"))


def load_yaml(path: Path) -> Any:
    """Read one YAML document strictly; an empty or unreadable document is an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded)") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - strict safe loader
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if data is None:
        raise ConfigError(f"{path}: empty document")
    return data


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "(document)"
    kind = error["type"]
    got = error.get("input")
    if kind == "extra_forbidden":
        return f"{where} is not an allowed key"
    if kind == "missing":
        return f"{where} is required"
    if kind in ("literal_error", "enum"):
        allowed = error.get("ctx", {}).get("expected", "")
        return f"{where} must be one of {allowed.replace(' or ', ', ')} (got {got!r})"
    message = str(error["msg"]).removeprefix("Value error, ")
    # A validator's own message names the value when it matters; pydantic's generic ones get it appended.
    return f"{where}: {message}" if "(got " in message else f"{where}: {message} (got {got!r})"


def parse_model(model: type[M], data: Any, source: str) -> M:
    """Validate ``data`` against ``model``; the error names the first bad field path."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = len(exc.errors()) - 1
        tail = f" (and {more} more)" if more else ""
        raise ConfigError(f"{source}: {_describe(dict(first))}{tail}") from exc


def load_model(model: type[M], path: Path) -> M:
    """Read ``path`` strictly and validate it against ``model``."""
    return parse_model(model, load_yaml(path), str(path))
