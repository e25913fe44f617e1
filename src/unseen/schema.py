"""One schema engine for typed dataclasses read from YAML files and `key=value` strings.

A field declares its valid values where it is defined (`param(default, gt=0)`, `param("a", choices=("a", "b"))`);
`build` turns a parsed YAML mapping into the dataclass, reading each value as its field's annotation (scalars, lists,
mappings, optional values, nested dataclasses), and `check` enforces every declared constraint with one line that
names the field, the rule and the value. Run configs (`unseen.config`) and sweep files (`unseen.sweep`) are read
with it.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from unseen.errors import UserError

T = TypeVar("T")


def param(
    default: Any = dataclasses.MISSING, *, factory: Callable[[], Any] | None = None, gt: float | None = None,
    ge: float | None = None, le: float | None = None, lt: float | None = None, choices: Sequence[Any] | None = None,
    nonempty: bool = False, distinct: bool = False, why: str = "", path: bool = False,
) -> Any:
    """A dataclass field with its constraints: `gt` / `ge` (greater than / at least), `lt` / `le` (below / at most),
    `choices` (one of); on a list they hold for every item, `nonempty` asks for one item at least and `distinct` for
    no item twice. `factory` makes a mutable default; with neither default nor factory the field is required. `why`
    is added to the error message. `path`: the field names a file or folder, made absolute by `absolute_paths`."""
    rule = {"gt": gt, "ge": ge, "le": le, "lt": lt, "choices": tuple(choices) if choices is not None else None,
            "nonempty": nonempty, "distinct": distinct, "why": why, "path": path}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={"rule": rule})
    return dataclasses.field(default=default, metadata={"rule": rule})


def rule_text(rule: dict[str, Any], integer: bool) -> str:
    """How the error message states a rule: "positive", "zero or positive", "lie in [0, 1]", "at least 2"."""
    gt, ge, le, lt = rule["gt"], rule["ge"], rule["le"], rule["lt"]
    if lt is not None:
        return f"lie in [{ge:g}, {lt:g})" if ge is not None else f"be below {lt:g}"
    if gt == 0 and le is None:
        return "be positive"
    if ge == 0 and le is None:
        return "be zero or positive"
    if ge is not None and le is not None:
        return f"lie in {ge:.0f}..{le:.0f}" if integer else f"lie in [{ge:g}, {le:g}]"
    if gt is not None and le is not None:
        return f"lie in ({gt:g}, {le:g}]"
    if ge is not None:
        return f"be at least {ge:g}"
    if gt is not None:
        return f"be greater than {gt:g}"
    return f"be at most {le:g}"


def check_value(key: str, value: Any, rule: dict[str, Any]) -> None:
    """Raise `UserError` if `value` of field `key` breaks its declared `rule` (a list: if any item does)."""
    if isinstance(value, list):
        if rule["nonempty"] and not value:
            raise UserError(f"{key} must be a non-empty list")
        twice = [item for i, item in enumerate(value) if item in value[:i]]
        if rule["distinct"] and twice:
            raise UserError(f"{key} lists {twice[0]!r} twice; name each once")
        for i, item in enumerate(value):
            check_value(f"{key}[{i}]", item, rule)
        return
    why = f" ({rule['why']})" if rule["why"] else ""
    if rule["choices"] is not None:
        if value not in rule["choices"]:
            raise UserError(f"{key} must be one of {', '.join(map(str, rule['choices']))}, got {value!r}{why}")
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{key} must be a finite number, got {value}")
    gt, ge, le, lt = rule["gt"], rule["ge"], rule["le"], rule["lt"]
    low_ok = (gt is None or value > gt) and (ge is None or value >= ge)
    if not low_ok or (le is not None and value > le) or (lt is not None and value >= lt):
        raise UserError(f"{key} must {rule_text(rule, isinstance(value, int))}, got {value}{why}")


def check(obj: Any, prefix: str = "") -> None:
    """Every declared constraint of dataclass `obj`'s fields and of the dataclasses it holds (directly or in a
    mapping), and every float finite; `prefix` names the section."""
    for f in dataclasses.fields(obj):
        value, key = getattr(obj, f.name), prefix + f.name
        rule = f.metadata.get("rule")
        if rule is not None:
            check_value(key, value, rule)
        elif isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{key} must be a finite number, got {value}")
        if dataclasses.is_dataclass(value):
            check(value, key + ".")
        elif isinstance(value, dict):
            for name, item in value.items():
                if dataclasses.is_dataclass(item):
                    check(item, f"{key}.{name}.")


def absolute_paths(obj: T) -> T:
    """A copy of dataclass `obj` whose path fields (`param(path=True)`; nested dataclasses' too) that are set are
    absolute: a run saved with them finds its files from any working directory."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            changes[f.name] = absolute_paths(value)
        elif f.metadata.get("rule", {}).get("path") and value:
            changes[f.name] = str(Path(value).expanduser().resolve())
    return dataclasses.replace(obj, **changes)  # type: ignore[type-var]


def build(
    cls: type, data: Any, prefix: str = "", sections: dict[str, Callable[[Any, str], Any]] | None = None,
    complete: bool = False,
) -> Any:
    """`cls` from a parsed YAML mapping, every value checked against its field's annotation (`read`): unknown keys
    are an error, a missing or null value takes the field's default (a field without one is required; with
    `complete`, every field is: a file written whole, a run's config.yaml, lacks none); `sections` builds the named
    nested fields its own way (`build(EnvConfig, value, "env.", complete=True)`, say)."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    where = prefix.rstrip(".") or "the file"
    if not isinstance(data, dict):
        raise UserError(f"{where} must be a mapping with keys from: {', '.join(fields)}")
    unknown = sorted(map(str, set(data) - set(fields)))
    if unknown:
        raise UserError(f"unknown key(s) {', '.join(prefix + u for u in unknown)} in {where}; "
                        f"valid keys: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        value, key = data.get(name), prefix + name
        if value is None:
            if complete:
                raise UserError(f"{key} is missing: the file is incomplete (cut short or edited); restore it from a "
                                "copy")
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise UserError(f"{key} is required")
            continue
        if sections and name in sections:
            kwargs[name] = sections[name](value, key + ".")
        else:
            kwargs[name] = read(hints[name], value, key)
    return cls(**kwargs)


def read(kind: Any, value: Any, key: str) -> Any:
    """`value` as annotation `kind`: a scalar (`coerce`), `list[X]`, `dict[str, X]`, `X | None` or a dataclass
    (`build`); anything else is an error naming `key`."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        (kind,) = [arg for arg in args if arg is not type(None)]
        return read(kind, value, key)
    if origin is list:
        if not isinstance(value, list):
            raise UserError(f"{key} must be a list, got {value!r}")
        return [read(args[0], item, f"{key}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{key} must be a mapping, got {value!r}")
        return {read(args[0], name, key): read(args[1], item, f"{key}.{name}") for name, item in value.items()}
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return build(kind, value, key + ".")
    return coerce(value, kind, key)


def coerce(value: Any, kind: Any, key: str) -> Any:
    """`value` as scalar type `kind`: YAML reads `1e-6` as a string and `1` where a float is due; a bool is never a
    number."""
    if kind is Any or (type(value) is kind):
        return value
    if kind is float and type(value) is int:
        return float(value)
    if isinstance(value, str) and kind in (int, float, bool):
        return parse(value, kind, key)
    raise UserError(f"{key}={value!r} is not a valid {getattr(kind, '__name__', kind)}")


def parse(raw: str, kind: type, key: str) -> Any:
    """A command-line or YAML string as a value of `kind` (bool: true/false, 1/0, yes/no)."""
    try:
        if kind is bool:
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return raw.lower() in ("true", "1", "yes")
        return kind(raw)
    except ValueError:
        raise UserError(f"{key}={raw!r} is not a valid {kind.__name__}") from None
