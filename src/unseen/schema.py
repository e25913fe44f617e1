"""One schema engine for typed dataclasses read from YAML files and `key=value` strings.

A field declares its valid values where it is defined (`param(default, gt=0)`, `param("a", choices=("a", "b"))`);
`build` turns a parsed YAML mapping into the dataclass, taking each value as the type of the field's default
(`coerce`), and `check` enforces every declared constraint with one line that names the field, the rule and the
value. Run configs (`unseen.config`) and sweep files (`unseen.sweep`) are read with it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from unseen.errors import UserError


def param(
    default: Any, *, gt: float | None = None, ge: float | None = None, le: float | None = None,
    lt: float | None = None, choices: Sequence[Any] | None = None, why: str = "",
) -> Any:
    """A dataclass field with its constraints: `gt` / `ge` (greater than / at least), `lt` / `le` (below / at most),
    `choices` (one of); `why` is added to the error message."""
    rule = {"gt": gt, "ge": ge, "le": le, "lt": lt, "choices": tuple(choices) if choices is not None else None,
            "why": why}
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
        return f"lie in {ge:g}..{le:g}" if integer else f"lie in [{ge:g}, {le:g}]"
    if gt is not None and le is not None:
        return f"lie in ({gt:g}, {le:g}]"
    if ge is not None:
        return f"be at least {ge:g}"
    if gt is not None:
        return f"be greater than {gt:g}"
    return f"be at most {le:g}"


def check_value(key: str, value: Any, rule: dict[str, Any]) -> None:
    """Raise `UserError` if `value` of field `key` breaks its declared `rule`."""
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
    """Every declared constraint of dataclass `obj`'s fields, and every float finite; `prefix` names the section."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        rule = f.metadata.get("rule")
        if rule is not None:
            check_value(prefix + f.name, value, rule)
        elif isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{prefix}{f.name} must be a finite number, got {value}")


def build(cls: type, data: Any, prefix: str = "", sections: dict[str, Callable[[Any, str], Any]] | None = None) -> Any:
    """`cls` from a parsed YAML mapping: unknown keys are an error, values take their field's type; `sections` builds
    the named nested fields (`build(EnvConfig, value, "env.")`, say)."""
    if not isinstance(data, dict):
        raise UserError(f"{prefix.rstrip('.') or 'the file'} must be a mapping of field: value, got {data!r}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UserError(f"unknown config field(s) {', '.join(prefix + u for u in unknown)}")
    kwargs = {}
    for name, value in data.items():
        if sections and name in sections:
            kwargs[name] = sections[name](value, f"{prefix}{name}.")
        else:
            kwargs[name] = coerce(value, known[name].default, prefix + name)
    return cls(**kwargs)


def coerce(value: Any, default: Any, key: str) -> Any:
    """`value` as the type of the field's default: YAML reads `1e-6` as a string and `1` where a float is due."""
    kind = type(default)
    if default is dataclasses.MISSING or (isinstance(value, kind) and type(value) is not bool) or kind is type(value):
        return value
    if kind is float and type(value) is int:
        return float(value)
    if isinstance(value, str):
        return parse(value, kind, key)
    raise UserError(f"{key}={value!r} is not a valid {kind.__name__}")


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
