"""Strict YAML: no implicit dates, no duplicate keys, and models whose errors name the field."""

from __future__ import annotations

import difflib
import os
import re
import reprlib
import types
from collections.abc import Mapping, Sequence
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, cast, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from ceremony.errors import ConfigError, InputError
from ceremony.fs import read_regular

M = TypeVar("M", bound=BaseModel)

#: The largest YAML file read (ceremony files, registers, profiles, policy, parameters): the shipped ones are
#: a few KiB; a bigger file is refused before it is parsed.
MAX_YAML_BYTES = 1 << 20
#: The deepest nesting of mappings and sequences a YAML file may have (the shipped files go 5 deep); checked
#: while composing, so a 50,000-deep file is refused before Python's recursion limit is near.
MAX_YAML_DEPTH = 64
#: The most values (scalars, mappings, sequences) a YAML file may hold, an alias counting as everything it
#: stands for: the shipped catalogue has about 2,000; a "billion laughs" document is refused at this count.
MAX_YAML_NODES = 100_000
#: How much of a rejected value an error message shows (it is the operator's own file, but one short line).
_SHOWN = 60


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


def _at(mark: Any) -> str:
    """Where a YAML mark points, as an editor counts: ``line L, column C`` (both from 1)."""
    return f"line {mark.line + 1}, column {mark.column + 1}"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without timestamp resolution (dates stay strings), with duplicate-key errors, and bounded:
    at most ``MAX_YAML_DEPTH`` levels of nesting and ``MAX_YAML_NODES`` values, aliases counted at the size of
    what they stand for.

    Both are counted as nodes are composed, before anything is constructed: a "billion laughs" document costs
    no more than its own text to refuse (its expansion would happen later, in validation and error messages),
    and a 50,000-deep one is refused long before Python's recursion limit.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0  # collections enclosing the node being composed, itself included
        self._deepest = 0  # the deepest level reached in the subtree being composed
        self._nodes = 0  # values composed so far, aliases counted in full
        self._measured: dict[int, tuple[int, int]] = {}  # id(anchored node) -> (values, levels)

    def _count(self, values: int, levels: int, mark: Any) -> None:
        self._nodes += values
        if self._nodes > MAX_YAML_NODES:
            raise ConfigError(f"{_at(mark)}: more than {MAX_YAML_NODES} values (aliases counted in full)")
        if self._depth + levels > MAX_YAML_DEPTH:
            raise ConfigError(f"{_at(mark)}: nested more than {MAX_YAML_DEPTH} levels deep")
        self._deepest = max(self._deepest, self._depth + levels)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        node: yaml.Node | None
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)
            self._count(*self._measured.get(id(node), (1, 0)), event.start_mark)
            return node
        levels = 1 if isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent) else 0
        self._count(1, levels, event.start_mark)
        before, outer = self._nodes - 1, self._deepest
        self._depth += levels
        self._deepest = self._depth
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= levels
        height, self._deepest = self._deepest - self._depth, max(outer, self._deepest)
        if getattr(event, "anchor", None) is not None:
            self._measured[id(node)] = (self._nodes - before, height)
        return node


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(f"duplicate key {key!r} at {_at(key_node.start_mark)}")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def data_dir() -> Path:
    """The shipped data (profiles, policy, example ceremonies): ``CEREMONY_DATA`` or the checkout's data/."""
    return Path(os.environ.get("CEREMONY_DATA", Path(__file__).resolve().parents[2] / "data"))


def read_yaml_bytes(path: Path, limit: int = MAX_YAML_BYTES, what: str = "YAML file") -> bytes:
    """The bytes of a YAML file: a regular file (not a link, FIFO or device) of at most ``limit`` bytes."""
    try:
        return read_regular(path, limit, what)
    except InputError as exc:
        raise ConfigError(exc.message) from exc


#: Where each value of a YAML document starts: its path (mapping keys and sequence indices, as a model's
#: error ``loc`` names them) -> its line, from 1 (a mapping entry: the line of its key).
Lines = Mapping[tuple[Any, ...], int]


def _lines(loader: _StrictLoader, root: yaml.Node) -> dict[tuple[Any, ...], int]:
    """Each path's line; a node met again through an alias is not walked again (bounded by the node count)."""
    found: dict[tuple[Any, ...], int] = {}
    walked: set[int] = set()
    stack: list[tuple[tuple[Any, ...], yaml.Node]] = [((), root)]
    while stack:
        path, node = stack.pop()
        if id(node) in walked:
            continue
        walked.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    key = loader.construct_object(key_node)
                    found.setdefault((*path, key), key_node.start_mark.line + 1)
                    stack.append(((*path, key), value_node))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                found.setdefault((*path, index), item.start_mark.line + 1)
                stack.append(((*path, index), item))
    return found


def parse_yaml_lines(data: bytes, source: str) -> tuple[Any, Lines]:
    """One YAML document from ``data``, strictly (see ``_StrictLoader``), and the line of each of its values
    (``parse_model`` names it in a field's error); errors name ``source``, the line, the column and the
    problem, never the text around it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start} cannot be decoded)") from None
    loader: _StrictLoader | None = None
    try:
        loader = _StrictLoader(text)  # the reader refuses unprintable characters here already
        root = loader.get_single_node()
        result = None if root is None else loader.construct_document(root)
        lines = {} if root is None else _lines(loader, root)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc.message}") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at {_at(mark)}" if mark is not None else ""
        problem = (exc.problem or exc.context or "malformed").splitlines()[0][:_SHOWN]
        raise ConfigError(f"{source}: not valid YAML{where} ({problem})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({str(exc).splitlines()[0][:_SHOWN]})") from exc
    finally:
        if loader is not None:
            loader.dispose()
    if result is None:
        raise ConfigError(f"{source}: empty document")
    return result, lines


def parse_yaml(data: bytes, source: str) -> Any:
    """One YAML document from ``data``, strictly (see ``parse_yaml_lines``)."""
    return parse_yaml_lines(data, source)[0]


def load_yaml(path: Path, limit: int = MAX_YAML_BYTES) -> Any:
    """Read one YAML document strictly; an empty, unreadable, oversized or non-regular file is an error."""
    return parse_yaml(read_yaml_bytes(path, limit), str(path))


def _shown(value: Any) -> str:
    """A rejected value for a one-line message: as written when short; a long one abridged (a few items of a
    few levels) and cut at ``_SHOWN`` characters, so that no value, however big, is expanded into the message."""
    abridged = reprlib.Repr()  # bounded: a few items of a few levels, however big the value
    abridged.maxlevel, abridged.maxstring, abridged.maxother = 3, _SHOWN + 2, _SHOWN
    abridged.maxdict = abridged.maxlist = abridged.maxtuple = abridged.maxset = 4
    text = abridged.repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def _name(part: Any) -> str:
    """One step of a field path: a key that looks like a name is shown, anything else only described."""
    text = str(part)
    return text if _NAME.match(text) else "(a key that is not a field name)"


_NAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,64}$")


#: How many allowed keys an unknown key's error lists before it says how many more there are.
_ALLOWED_SHOWN = 20


def _unwrapped(annotation: Any) -> list[Any]:
    """A field's annotation as the types it may hold: Annotated and Optional/Union opened."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrapped(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [t for arg in get_args(annotation) for t in _unwrapped(arg)]
    return [annotation]


def _step(annotation: Any, part: Any) -> list[Any]:
    """The types found one step (``part``, a key or an index) into a value of type ``annotation``."""
    found: list[Any] = []
    for kind in _unwrapped(annotation):
        origin, args = get_origin(kind), get_args(kind)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            if isinstance(part, str) and part in kind.model_fields:
                found.append(kind.model_fields[part].annotation)
        elif isinstance(origin, type) and issubclass(origin, Mapping) and len(args) == 2:
            found.append(args[1])
        elif isinstance(origin, type) and issubclass(origin, Sequence | set | frozenset) and args:
            if isinstance(part, int):
                found.append(args[0])
    return found


def _fields_at(model: type[BaseModel], path: Sequence[Any]) -> list[str]:
    """The field names of the model(s) a value at ``path`` is validated against (a step the types do not
    know, such as the name of a union's member in pydantic's error path, is passed over)."""
    kinds: list[Any] = [model]
    for part in path:
        kinds = [t for kind in kinds for t in _step(kind, part)] or kinds
    names: list[str] = []
    for kind in kinds:
        for t in _unwrapped(kind):
            if isinstance(t, type) and issubclass(t, BaseModel):
                names += [n for n in t.model_fields if n not in names]
    return names


#: How alike (difflib's ratio) an unknown key must be to a field to be suggested: any field, or a required field
#: that is missing beside it (then the likelier meaning: ``nn`` for a missing ``n``).
_ALIKE, _ALIKE_MISSING = 0.75, 0.5


def _meant(key: str, missing: Sequence[str], allowed: Sequence[str]) -> list[str]:
    return difflib.get_close_matches(key, missing, n=1, cutoff=_ALIKE_MISSING) or difflib.get_close_matches(
        key, allowed, n=1, cutoff=_ALIKE
    )


def _suggestion(error: Mapping[str, Any], model: type[BaseModel], missing: Sequence[str]) -> tuple[str | None, str]:
    """For an unknown key: the field it was probably meant to be (or None), and the allowed keys."""
    *parent, key = error["loc"]
    allowed = _fields_at(model, parent) or list(missing)
    meant = _meant(str(key), missing, allowed) if _NAME.match(str(key)) else []
    shown = ", ".join(allowed[:_ALLOWED_SHOWN])
    if len(allowed) > _ALLOWED_SHOWN:
        shown += f" and {len(allowed) - _ALLOWED_SHOWN} more"
    return (meant[0] if meant else None), shown


def _describe(error: Mapping[str, Any], model: type[BaseModel] | None = None, missing: Sequence[str] = ()) -> str:
    where = ".".join(_name(p) for p in error["loc"]) or "(document)"
    kind = error["type"]
    got = error.get("input")
    if kind == "extra_forbidden":
        if model is None:
            return f"{where} is not a field"
        meant, allowed = _suggestion(error, model, missing)
        hint = f" (did you mean {meant}?)" if meant else ""
        return f"{where} is not a field{hint}; allowed: {allowed}" if allowed else f"{where} is not a field{hint}"
    if kind == "missing":
        return f"{where} is required"
    if not error["loc"] and kind in ("model_type", "dict_type", "model_attributes_type"):
        # The whole document is the wrong kind of thing (a list, a scalar: perhaps not the file meant): say
        # what it is, never what it says.
        return f"(document) must be a mapping (got {type(got).__name__})"
    if kind in ("literal_error", "enum"):
        allowed = error.get("ctx", {}).get("expected", "")
        return f"{where} must be one of {allowed.replace(' or ', ', ')} (got {_shown(got)})"
    message = str(error["msg"]).removeprefix("Value error, ")
    # A validator's own message names the value when it matters; pydantic's generic ones get it appended.
    return f"{where}: {message}" if "(got " in message else f"{where}: {message} (got {_shown(got)})"


def _line(loc: Sequence[Any], lines: Lines | None) -> str:
    """`` (line N)``: where the deepest part of ``loc`` the document has starts (a missing key: its parent's
    line); empty when the document does not place it."""
    path: tuple[Any, ...] = ()
    line = None
    for part in loc:
        if lines and (*path, part) in lines:
            path = (*path, part)
            line = lines[path]
    return f" (line {line})" if line is not None else ""


def _ordered(errors: Sequence[Mapping[str, Any]], model: type[BaseModel]) -> list[Mapping[str, Any]]:
    """The errors to report, the first one first: an unknown key before anything else (a misspelt key is
    also a missing one, and the misspelling is the mistake), a missing key it was meant to be left out."""
    unknown = [e for e in errors if e["type"] == "extra_forbidden" and e["loc"]]
    meant: set[tuple[Any, ...]] = set()
    for error in unknown:
        *parent, key = error["loc"]
        siblings = [e["loc"][-1] for e in errors if e["type"] == "missing" and list(e["loc"][:-1]) == parent]
        choice = difflib.get_close_matches(str(key), [str(s) for s in siblings], n=1, cutoff=_ALIKE_MISSING)
        if choice:
            meant.add((*parent, choice[0]))
    rest = [e for e in errors if e not in unknown and not (e["type"] == "missing" and tuple(e["loc"]) in meant)]
    return [*unknown, *rest]


def parse_model(model: type[M], data: Any, source: str, lines: Lines | None = None) -> M:
    """Validate ``data`` against ``model``; the error names the first bad field path (an unknown key
    first, with the field it probably meant), and its line when ``lines`` (``parse_yaml_lines``) places it."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = _ordered([dict(e) for e in exc.errors()], model)
        first = errors[0]
        parent = list(first["loc"][:-1])
        missing = [str(e["loc"][-1]) for e in exc.errors() if e["type"] == "missing" and list(e["loc"][:-1]) == parent]
        more = len(errors) - 1
        tail = f" (and {more} more)" if more else ""
        raise ConfigError(f"{source}: {_describe(first, model, missing)}{_line(first['loc'], lines)}{tail}") from exc


def load_model(model: type[M], path: Path, limit: int | None = None) -> M:
    """Read ``path`` strictly and validate it against ``model``.

    ``limit`` (bytes) defaults to the model's ``max_file_bytes`` when it declares one (a ``ClassVar``), else
    ``MAX_YAML_BYTES``; the file's kind in messages is the model's ``file_kind``, else "YAML file".
    """
    cap = limit if limit is not None else int(getattr(model, "max_file_bytes", MAX_YAML_BYTES))
    what = str(getattr(model, "file_kind", "YAML file"))
    data = read_yaml_bytes(path, cap, what)
    if len(data) > _KEPT_BYTES:
        return _validate(model, data, str(path))
    return cast(M, _validated(model, data, str(path)))


#: Files up to this size are kept validated (256 of them at most: 16 MB at worst), larger ones parsed each time.
_KEPT_BYTES = 64 * 1024


def _validate(model: type[M], data: bytes, source: str) -> M:
    parsed, lines = parse_yaml_lines(data, source)
    return parse_model(model, parsed, source, lines)


@lru_cache(maxsize=256)
def _validated(model: type[M], data: bytes, source: str) -> M:
    """``data`` parsed and validated; the same bytes of the same file give the same (frozen) model without being
    parsed again (a long-lived process reads its policy, register and workspace files for every operation; the
    file is read each time, so an edit is always seen). Errors are raised, never kept."""
    return _validate(model, data, source)
