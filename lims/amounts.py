"""Amounts as people read them: plain decimals, the unit's singular or plural, and a
precision that means something. Text only, so messages, labels, reports and pages share it
without importing the unit registry."""

from __future__ import annotations

from decimal import Decimal, localcontext


def plain_number(value: Decimal) -> str:
    """Plain notation without exponent or trailing zeros: 1E+3 prints as 1000."""
    text = format(value.normalize(), "f")
    return text if text not in ("-0", "") else "0"


def shown_number(value: Decimal) -> str:
    """A number for a message: plain, or in E notation when plain would be very long (a
    refusal of "5e-999999 mL" must not be a megabyte of zeros)."""
    text = plain_number(value)
    return text if len(text) <= 40 else format(value.normalize(), "E")


# Significant digits a printed amount keeps: a pipette or balance reads to 3-4; six keep
# every value the lab enters (0.25 mL, 7.5e6 cells) exact and stop 1/3 mL printing twelve 3s.
SHOWN_DIGITS = 6
# Count units and their singular: "1 vial", "2 vials", "1 cell".
_SINGULAR = {"vials": "vial", "vial": "vial", "cells": "cell", "cell": "cell"}
_PLURAL = {"vial": "vials", "vials": "vials", "cell": "cells", "cells": "cells"}


def unit_word(unit: str, value: Decimal) -> str:
    """``unit`` in the singular for exactly one, the plural otherwise (count units only)."""
    if unit in _SINGULAR:
        return _SINGULAR[unit] if value == 1 else _PLURAL[unit]
    return unit


def amount_text(value: Decimal, unit: str, *, exact: bool = False) -> str:
    """An amount for a person: to its meaningful precision (``exact``: every digit as
    entered), E notation when plain would be long, the unit singular or plural."""
    number = value if exact else _significant(value)
    return f"{shown_number(number)} {unit_word(unit.strip(), value)}".rstrip()


def _significant(value: Decimal) -> Decimal:
    if not value or not value.is_finite():
        return value
    with localcontext() as context:
        context.prec = SHOWN_DIGITS
        return +value


def meaningful(value: Decimal, *, significant: int = 4) -> str:
    """A stored magnitude as people read it: at most ``significant`` significant digits
    after the point and no trailing zeros (20.000000000000 -> 20, 3.333333333333 -> 3.333);
    whole digits are never rounded away (1234567 stays 1234567)."""
    value = Decimal(value)
    if not value.is_finite() or value == 0:
        return plain_number(value) if value.is_finite() else str(value)
    digits_before_point = max(value.adjusted() + 1, 0)
    places = max(significant - digits_before_point, 0)
    if value.adjusted() < 0:  # 0.000123456: keep the significant digits themselves
        places = -value.adjusted() + significant - 1
    with localcontext() as context:
        context.prec = 60
        return plain_number(value.quantize(Decimal(1).scaleb(-places)))
