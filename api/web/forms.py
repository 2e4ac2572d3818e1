"""What a refused form says, for the macros in templates/_forms.html: each problem by its
field (in the form's order) and the ones about the form as a whole, in people's words."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from jinja2 import Environment

# "dose: … [24]; [I] margin" -> the citation markers a rule carries for auditors, not people.
_CITATION = re.compile(r"\s*\[[^\]]{1,12}\]")


def plain(message: str) -> str:
    """A rule's message without citation markers, starting with a capital letter."""
    text = _CITATION.sub("", message).strip()
    return text[:1].upper() + text[1:]


# Codes whose plain reading is wrong ("co2" is CO₂); every other code reads as words.
NAMES = {
    "co2_incubator": "CO₂ incubator",
    "cm": "conditioned medium",
    "svf": "SVF (stromal vascular fraction)",
    "aape": "AAPE",
    "qc": "QC",
    "qc_testing": "in QC testing",
    "qc_passed": "QC passed",
    "qc_failed": "QC failed",
    "dp_culture": "DP culture",
    "dp_cells": "DP cells",
    "aape_lot": "AAPE lot",
}


def human(code: object) -> str:
    """A code as people read it: 'shaking_incubator' -> 'Shaking incubator'."""
    raw = str(code or "").strip()
    words = raw.lower() if raw.isupper() else raw  # a state: ON_HOLD -> on hold
    text = NAMES.get(raw.lower(), words.replace("_", " ").replace("-", " "))
    return text[:1].upper() + text[1:]


@dataclass
class Problems:
    """Field id -> message, plus messages about the whole form."""

    fields: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def add(self, message: str, field_id: str | None = None) -> None:
        """Record a problem by its field (the first one per field wins) or for the form."""
        if field_id and field_id not in self.fields:
            self.fields[field_id] = plain(message)
        else:  # a second problem with the same field is still listed, in the summary
            self.general.append(plain(message))

    def get(self, field_id: str) -> str:
        """The message shown by this field ('' when it is fine)."""
        return self.fields.get(field_id, "")

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)


def pair(code: object) -> tuple[str, str]:
    """A choice as (value sent, text shown)."""
    return str(code), human(code)


def install_filters(env: Environment) -> None:
    """The filters the templates use for people's words."""
    env.filters["human"] = human
    env.filters["pair"] = pair
    env.filters["instrument_option"] = lambda i: (
        str(i.id),
        f"{i.asset_tag} (calibration due {i.calibration_due:%Y-%m-%d})",
    )
    env.filters["reagent_option"] = lambda r: (
        str(r.id),
        f"{r.lot_number} (expires {r.expires_at:%Y-%m-%d})",
    )
