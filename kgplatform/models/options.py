"""Type and range checks for the model configs (``--set key=value`` arrives here through ``json.loads``).

Each config dataclass has a ``validate()`` that calls these helpers field by field; ``ModelSpec.make_config``
calls it, so a bad option stops ``kgp train``/``kgp evaluate`` before anything is exported or trained, with one
:class:`~kgplatform.errors.TrainingError` line naming the option. Obviously numeric JSON is coerced (``64.0`` for
an int, ``1`` for a float, a list for a tuple of floats); a bool is never a number, a string never a number.
"""
from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import Any

from kgplatform.errors import ConfigError, TrainingError


def parse_assignments(values: Sequence[str], flag: str = "--set") -> dict[str, Any]:
    """``["key=value", …]`` → ``{key: value}``, each value through ``json.loads`` (``4096`` → int, ``true`` →
    bool) and kept as the string where it is not JSON; the configs' ``validate()`` checks them. A value
    without ``=`` is one :class:`~kgplatform.errors.ConfigError` naming ``flag``."""
    out: dict[str, Any] = {}
    for v in values:
        if "=" not in v:
            raise ConfigError(f"{flag} expects key=value, got {v!r}")
        k, raw = v.split("=", 1)
        try:
            out[k.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[k.strip()] = raw
    return out


def parse_model_assignments(values: Sequence[str], flag: str = "--set") -> dict[str, dict[str, Any]]:
    """``["MODEL.key=value", …]`` → ``{model: {key: value}}`` (values as in :func:`parse_assignments`); an entry
    without a ``MODEL.`` prefix is one :class:`~kgplatform.errors.ConfigError` naming ``flag``."""
    out: dict[str, dict[str, Any]] = {}
    for v in values:
        if "." not in v.split("=", 1)[0]:
            raise ConfigError(f"{flag} expects MODEL.key=value, got {v!r}")
        model, rest = v.split(".", 1)
        out.setdefault(model.strip(), {}).update(parse_assignments([rest], flag))
    return out


def _fail(cfg: Any, name: str, what: str, value: Any) -> TrainingError:
    model = type(cfg).__name__.removesuffix("Config")
    default = next((f.default for f in dataclasses.fields(cfg) if f.name == name), dataclasses.MISSING)
    hint = f"--set {name}=VALUE" + ("" if default is dataclasses.MISSING else f" (default {default!r})")
    return TrainingError(f"{model} option {name} must be {what}, got {value!r}", hint=hint)


def _bounds(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi:g}")
    return " and ".join(parts)


def _in_range(v: float, lo, hi, lo_open: bool, hi_open: bool) -> bool:
    if lo is not None and (v <= lo if lo_open else v < lo):
        return False
    if hi is not None and (v >= hi if hi_open else v > hi):
        return False
    return True


def as_int(v: Any) -> int | None:
    """``v`` as an int (an integral float counts), or None (bools, strings, fractions, NaN)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        return int(v)
    return None


def as_float(v: Any) -> float | None:
    """``v`` as a finite float, or None (bools, strings, NaN, infinities)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def check_int(cfg: Any, name: str, lo: int | None = 1, hi: int | None = None) -> int:
    """``cfg.name`` must be an integer in ``[lo, hi]``; stored back as an int."""
    raw = getattr(cfg, name)
    v = as_int(raw)
    if v is None or not _in_range(v, lo, hi, False, False):
        raise _fail(cfg, name, "an integer" + (f" {_bounds(lo, hi, False, False)}" if (lo, hi) != (None, None)
                                               else ""), raw)
    setattr(cfg, name, v)
    return v


def check_float(cfg: Any, name: str, lo: float | None = None, hi: float | None = None, *,
                lo_open: bool = False, hi_open: bool = False) -> float:
    """``cfg.name`` must be a finite number in the given range; stored back as a float."""
    raw = getattr(cfg, name)
    v = as_float(raw)
    if v is None or not _in_range(v, lo, hi, lo_open, hi_open):
        rng = _bounds(lo, hi, lo_open, hi_open)
        raise _fail(cfg, name, "a finite number" + (f" {rng}" if rng else ""), raw)
    setattr(cfg, name, v)
    return v


def check_bool(cfg: Any, name: str) -> bool:
    """``cfg.name`` must be ``true`` or ``false`` (not 0/1, not a string)."""
    raw = getattr(cfg, name)
    if not isinstance(raw, bool):
        raise _fail(cfg, name, "true or false", raw)
    return raw


def check_choice(cfg: Any, name: str, choices: Sequence[str]) -> str:
    """``cfg.name`` must be one of ``choices``."""
    raw = getattr(cfg, name)
    if not isinstance(raw, str) or raw not in choices:
        raise _fail(cfg, name, "one of " + ", ".join(choices), raw)
    return raw


def check_floats(cfg: Any, name: str, lo: float | None = None, hi: float | None = None) -> tuple[float, ...]:
    """``cfg.name`` must be a non-empty list of numbers in ``[lo, hi]``; stored back as a tuple of floats."""
    raw = getattr(cfg, name)
    vals = [as_float(v) for v in raw] if isinstance(raw, (list, tuple)) else None
    if not vals or any(v is None or not _in_range(v, lo, hi, False, False) for v in vals):
        rng = _bounds(lo, hi, False, False)
        raise _fail(cfg, name, "a non-empty list of numbers" + (f" {rng}" if rng else ""), raw)
    out = tuple(vals)  # type: ignore[arg-type]
    setattr(cfg, name, out)
    return out


def check_fanouts(cfg: Any, name: str) -> tuple[int, ...]:
    """``cfg.name`` must be a non-empty list of neighbour fan-outs, each ``-1`` (every neighbour) or a positive
    integer; a comma-separated string (``--set num_neighbors=10,10``) or a single integer counts as a list.
    Stored back as a tuple of ints."""
    raw = getattr(cfg, name)
    vals = raw
    if isinstance(raw, str):
        try:
            vals = [int(x) for x in raw.split(",")]
        except ValueError:
            vals = None
    elif as_int(raw) is not None:
        vals = [as_int(raw)]
    ints = [as_int(v) for v in vals] if isinstance(vals, (list, tuple)) else None
    if not ints or any(v is None or not (v == -1 or v >= 1) for v in ints):
        raise _fail(cfg, name, "a non-empty list of fan-outs, each -1 (all neighbours) or >= 1, e.g. 10,10", raw)
    out = tuple(ints)  # type: ignore[arg-type]
    setattr(cfg, name, out)
    return out


def refuse(cfg: Any, name: str, message: str) -> TrainingError:
    """A cross-field rule broken: ``<Model> option <name>: <message>``."""
    model = type(cfg).__name__.removesuffix("Config")
    return TrainingError(f"{model} option {name}: {message}", hint=f"--set {name}=VALUE")


def check_user_feature_options(cfg: Any) -> None:
    """A model config's ``user_features``, ``knowledge_reg`` (≥ 0), ``knowledge_dropout`` ([0, 1)) and
    ``knowledge_fallback`` fields; see
    :class:`~kgplatform.nn.user_features.UserFeatureFusion`."""
    from kgplatform.nn.user_features import USER_FEATURES

    check_choice(cfg, "user_features", USER_FEATURES)
    check_float(cfg, "knowledge_reg", 0.0)
    check_float(cfg, "knowledge_dropout", 0.0, 1.0, hi_open=True)
    check_bool(cfg, "knowledge_fallback")
    if cfg.user_features == "fallback" and not cfg.knowledge_fallback:
        raise refuse(cfg, "knowledge_fallback", "user_features=fallback is the learned fallback vector alone; "
                                                "without it the model is the plain one (user_features=none)")
