"""How the dashboard writes numbers: one place, so every page says the same thing the same way.

Rates carry their raw counts, estimates their interval, and a missing value is an em dash
with a reason nearby, never a zero that was not measured.
"""

from __future__ import annotations

import datetime as dt
import math

from flask import Flask

MISSING = "—"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def signed_percent(value: float | None, digits: int = 1) -> str:
    """``0.583`` -> ``+58.3%`` (a lift, a change)."""
    if _missing(value):
        return MISSING
    text = f"{value * 100:+.{digits}f}%"
    return text.replace("-", "−")  # a real minus sign: it lines up with the plus


def percent(value: float | None, digits: int = 1) -> str:
    """``0.046`` -> ``4.6%`` (a rate, a share)."""
    if _missing(value):
        return MISSING
    return f"{value * 100:.{digits}f}%"


def count(value: float | None) -> str:
    """``12345`` -> ``12,345``; fractional credit shares keep one decimal."""
    if _missing(value):
        return MISSING
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def money(value: float | None) -> str:
    """``3180.456`` -> ``3,180.46`` (the currency is the workspace's own, unnamed)."""
    if _missing(value):
        return MISSING
    return f"{value:,.2f}".replace("-", "−")


def signed_money(value: float | None) -> str:
    if _missing(value):
        return MISSING
    return ("+" if value >= 0 else "") + money(value)


def signed_count(value: float | None) -> str:
    """``412`` -> ``+412``."""
    if _missing(value):
        return MISSING
    return ("+" if value >= 0 else "−") + count(abs(value))


def whole_percent(value: float | None) -> str:
    return signed_percent(value, 0)


def rate_with_counts(numerator: float | None, denominator: float | None) -> str:
    """``4.6% (138 / 3,000)``: a rate is never shown without what it was computed from."""
    if not denominator:
        return f"{MISSING} (0 / 0)"
    numerator = numerator or 0
    return f"{percent(numerator / denominator)} ({count(numerator)} / {count(denominator)})"


def interval(low: float | None, high: float | None, fmt=signed_percent) -> str:
    """``−2.1% to +12.4%``."""
    if _missing(low) or _missing(high):
        return MISSING
    return f"{fmt(low)} to {fmt(high)}"


def p_value(value: float | None) -> str:
    if _missing(value):
        return MISSING
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def day(value: dt.date | str | None) -> str:
    """``2026-11-30`` -> ``30 Nov 2026``."""
    if value is None:
        return MISSING
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    return f"{value.day} {value:%b %Y}"


def moment(value: dt.datetime | None) -> str:
    """A timestamp in UTC, to the minute: ``30 Nov 2026 14:05 UTC``."""
    if value is None:
        return MISSING
    value = value.astimezone(dt.UTC)
    return f"{value.day} {value:%b %Y %H:%M} UTC"


def lift_scale(lifts, floor: float = 0.25, ceiling: float = 5.0) -> tuple[float, float]:
    """One scale for a table's interval bars: every interval fits, zero is inside, and
    one runaway interval (a tiny segment) is clipped rather than squashing the rest."""
    ends = [e for lift in lifts for e in (lift.ci_low, lift.ci_high) if not _missing(e)]
    low = max(-ceiling, min([-floor, *ends]))
    high = min(ceiling, max([floor, *ends]))
    return (low, high)


def bar_x(value: float, scale: tuple[float, float], width: int, pad: int = 4) -> float:
    """Where ``value`` falls on an interval bar ``width`` pixels wide (clipped to it)."""
    low, high = scale
    clipped = min(max(value, low), high)
    return round((clipped - low) / (high - low) * (width - 2 * pad) + pad, 1)


FILTERS = {
    "signed_percent": signed_percent,
    "percent": percent,
    "count": count,
    "money": money,
    "signed_money": signed_money,
    "signed_count": signed_count,
    "whole_percent": whole_percent,
    "p_value": p_value,
    "day": day,
    "moment": moment,
}


def query_args(base: dict, filters: dict, **extra) -> dict:
    """Link arguments: ``base``, the non-empty ``filters``, then ``extra`` (a page number)."""
    return {**base, **{k: v for k, v in filters.items() if v}, **extra}


def items2dict(pairs) -> dict:
    """``[("type", "x"), ...]`` -> ``{"type": "x"}``: the non-empty filters as link arguments."""
    return dict(pairs)


def register(app: Flask) -> None:
    app.jinja_env.filters.update(FILTERS, items2dict=items2dict)
    app.jinja_env.globals.update(
        rate_with_counts=rate_with_counts,
        interval=interval,
        lift_scale=lift_scale,
        bar_x=bar_x,
        signed_money=signed_money,
        whole_percent=whole_percent,
        query_args=query_args,
    )
