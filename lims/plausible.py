"""What a lab quantity can plausibly be, per kind, in the kind's canonical unit.

These are not SOP limits (those say what a method allows, per parameter, in
lims/sops/catalog.py); they are the outer bounds past which a number is a typing error or
a physical impossibility, whatever field it is typed into: a 1 m**3 harvest, a storage
position at -500 K. lims.units checks them on every parse, before any rounding. Numbers
and bracketed references come from ../shared/docs/domain.md; [I] marks a lab decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ABSOLUTE_ZERO_C = Decimal("-273.15")


@dataclass(frozen=True)
class Bounds:
    low: Decimal  # canonical unit; inclusive
    high: Decimal  # canonical unit; inclusive
    source: str


def _b(low: str, high: str, source: str) -> Bounds:
    return Bounds(Decimal(low), Decimal(high), source)


# Keyed by lims.units.QuantityKind values (this module is imported by lims.units).
BOUNDS: dict[str, Bounds] = {
    "volume": _b(
        "0",
        "10000",
        "[I] 10 L: intake takes up to 2000 mL of lipoaspirate (LIPO-INTAKE v1; 100 mL of fat "
        "gives ~2e7 SVF cells [30]); a dose is 2 mL per half-scalp [25]",
    ),
    "mass": _b(
        "0",
        "10000000",
        "[I] 10 kg: a biopsy is 2x2 mm [7]; a dose 0.3-0.6 ug of protein per site [24]",
    ),
    "cells": _b(
        "0",
        "1e13",
        "[I] 100x the 1e11 cells a culture count allows (CULTURE-COUNT v1, ADSC-PASSAGE v1); "
        "0.5-1e6 SVF cells per g [9]",
    ),
    "vials": _b("0", "100000", "[I] a lot fills 15 vials from 60 mL (AAPE-FILL v1)"),
    "duration": _b(
        "0",
        str(10 * 36525 * 24 * 60 // 100),
        "[I] 10 years: sterility takes 14 days [34], lyophilised secretome is stable "
        "30 months at -80 degC [21]",
    ),
    "temperature": _b(
        str(ABSOLUTE_ZERO_C),
        "200",
        "absolute zero is -273.15 degC; [I] 200 degC: the lab's temperatures run from "
        "-196 degC (liquid nitrogen) through 37 degC culture and 40 degC secondary drying "
        "[23] to sterilisers",
    ),
    "pressure": _b(
        "0",
        "7600000",
        "[I] 10 atm: freeze-drying runs at 50-200 mTorr [23]; the atmosphere is 760 Torr",
    ),
    "rcf": _b(
        "0",
        "1000000",
        "[I] 1e6 x g, an ultracentrifuge's; SVF washing 1200-1660 x g [8][13], "
        "CM clarification 13,000 x g [47]",
    ),
    "fraction": _b("0", "100", "a percentage of a whole is 0-100 %"),
    "length": _b(
        "0",
        "1000000",
        "[I] 1 m: filters are 100 um [8], 0.22 um [I]; a biopsy 2x2 mm [7]; injection "
        "sites ~1 cm apart [25]",
    ),
    "area": _b(
        "0",
        "100000",
        "[I] 5x the 20,000 cm**2 of culture area ADSC-SEED v1 allows; seeding 2e3 cells/cm**2 [12]",
    ),
    "cell_density": _b(
        "0",
        "10000000",
        "[I] 1e7 cells/cm**2, beyond a confluent monolayer; seeding 2-3e3 cells/cm**2 [12]",
    ),
    "cell_concentration": _b(
        "0",
        "1e10",
        "[I] 1e10 cells/mL, beyond packed cells; SVF ~1.85e5 cells/mL [10]",
    ),
    "mass_concentration": _b(
        "0",
        "1000000",
        "1 g/mL, denser than any protein solution; freeze-dried CM holds ~15x the protein of "
        "CM [19]",
    ),
    "endotoxin_concentration": _b(
        "0",
        "1000000",
        "[I] 1e6 EU/mL; the release limit is 87.5 EU/mL (USP <85>, 4 mL dose) [33]",
    ),
    "count": _b("0", "1000000000", "[I] a plain number a person types: passages, doublings"),
}
