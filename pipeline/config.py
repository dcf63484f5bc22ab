"""Params sections checked against a config dataclass per section: the one place a setting's type,
range and allowed values are written down. The values themselves live only in params.yaml.

A section must name exactly the dataclass's fields: a key the dataclass lacks is a typo, a field
the file lacks is a setting nobody chose (there are no defaults in code that would fill it in).
Every error names the params file actually read and the full key. Values come back unchanged
(``12`` stays an int where a float is allowed), so what a stage records (model meta, metrics) is
byte for byte what the file says.

Plain dataclasses rather than pydantic: pydantic coerces values (12 -> 12.0), which would change
the bytes of artifacts that record their params, and it is not a declared dependency.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from typing import Any, Callable, Iterable, Mapping

from pipeline.common import PARAMS_FILE, ParamsError, load_params, params_name


def setting(*, ge: float | None = None, gt: float | None = None, le: float | None = None,
            lt: float | None = None, choices: Iterable[Any] | None = None,
            check: Callable[[Any], str | None] | None = None, param: bool = True) -> Any:
    """A required dataclass field with bounds (``ge``/``gt``/``le``/``lt``: on a number, or on every
    number of a list), allowed ``choices`` (of a value, or of every item of a list) and an optional
    ``check(value)`` that returns what is wrong (or None). ``param=False``: a field the stage fills
    in from its data (not a params key)."""
    return dataclasses.field(metadata={"ge": ge, "gt": gt, "le": le, "lt": lt, "param": param,
                                       "choices": None if choices is None else tuple(choices), "check": check})


def section(name: str, schema: type, params: Mapping[str, Any] | None = None,
            *, path: str | os.PathLike = PARAMS_FILE) -> dict[str, Any]:
    """The ``name`` section of the params file (``params``, or ``path`` read now), checked against the
    dataclass ``schema``; a plain dict of the file's values (nested sections as dicts)."""
    params = load_params(path) if params is None else params
    where = params_name(params, path)
    if name not in params:
        raise ParamsError(f"{where}: no section '{name}'; it needs the keys {', '.join(keys(schema))}")
    return check_section(schema, params[name], where=where, prefix=name)


def keys(schema: type) -> list[str]:
    """The keys a section checked by ``schema`` holds, in declaration order."""
    return [f.name for f in _param_fields(schema)]


def check_fields(instance: Any, label: str) -> None:
    """The field rules of a dataclass ``instance`` built in code (``__post_init__``): ValueError
    naming ``label.field``."""
    hints = typing.get_type_hints(type(instance))
    for f in dataclasses.fields(instance):
        value = getattr(instance, f.name)
        problem = _problem(value, hints[f.name], f.metadata)
        if problem:
            raise ValueError(f"{label} {f.name} = {value!r}: {problem}")


def _param_fields(schema: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(schema) if f.metadata.get("param", True)]


def check_section(schema: type, data: Any, *, where: str, prefix: str) -> dict[str, Any]:
    """``data`` checked against ``schema`` (see the module docstring); errors name ``where`` and
    ``prefix.key``."""
    if not isinstance(data, Mapping):
        raise ParamsError(f"{where}: section '{prefix}' must be a mapping, got {type(data).__name__}")
    known = keys(schema)
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ParamsError(f"{where}: unknown key(s) {', '.join(f'{prefix}.{k}' for k in unknown)}; "
                          f"known keys: {', '.join(sorted(known))}")
    missing = [k for k in known if k not in data]
    if missing:
        raise ParamsError(f"{where}: missing key(s) {', '.join(f'{prefix}.{k}' for k in missing)}: "
                          f"every setting is stated in the params file (see the repository's params.yaml)")
    hints = typing.get_type_hints(schema)
    values: dict[str, Any] = {}
    fields = _param_fields(schema)
    for f in fields:
        key, value, hint = f"{prefix}.{f.name}", data[f.name], hints[f.name]
        if dataclasses.is_dataclass(hint):
            values[f.name] = check_section(hint, value, where=where, prefix=key)
            continue
        problem = _problem(value, hint, f.metadata)
        if problem:
            raise ParamsError(f"{where}: {key} = {value!r}: {problem}")
        values[f.name] = value
    if len(fields) == len(dataclasses.fields(schema)):
        try:  # rules across keys live in the dataclass's __post_init__: a ValueError naming the keys
            schema(**values)
        except ValueError as exc:
            raise ParamsError(f"{where}: {exc}") from None
    return values


_BOUNDS = (("ge", ">=", lambda x, b: x >= b), ("gt", ">", lambda x, b: x > b),
           ("le", "<=", lambda x, b: x <= b), ("lt", "<", lambda x, b: x < b))


def _problem(value: Any, hint: Any, rules: Mapping[str, Any]) -> str | None:
    if not _is(value, hint):
        return f"expected {_describe(hint)}"
    hint = next((a for a in typing.get_args(hint) if _is(value, a)), hint)  # the union member it is
    listed = isinstance(value, list)
    item_hint = typing.get_args(hint)[0] if listed else hint
    lead = "every item to be " if listed else ""
    for item in value if listed else [value]:
        if _is(item, float):
            for rule, word, ok in _BOUNDS:
                bound = rules.get(rule)
                if bound is not None and not ok(item, bound):
                    return f"expected {lead}{_describe(item_hint)} {word} {bound}"
        choices = rules.get("choices")
        if choices is not None and item is not None and item not in choices:
            return f"expected {lead}one of {', '.join(map(repr, choices))}"
    check = rules.get("check")
    return check(value) if check is not None else None


def _is(value: Any, hint: Any) -> bool:
    """``value`` has the type ``hint`` names (bool is not a number; an int is a float)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_is(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if origin is list:
        return isinstance(value, list) and all(_is(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, Mapping) and all(_is(k, args[0]) and _is(v, args[1]) for k, v in value.items())
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if origin is typing.Literal:
        return " or ".join(map(repr, args))
    if origin is list:
        return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return f"a mapping of {_describe(args[0])} to {_describe(args[1])}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            type(None): "null"}.get(hint, getattr(hint, "__name__", str(hint)))
