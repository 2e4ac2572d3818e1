"""Material ids (ISBT 128 DIN shape) and chain-of-identity ids, formatted and parsed.

A material id is the 13 DIN data characters -- facility (5), year (2), sequence (6) --
followed by its mod 37-2 check character (0-9, A-Z or *): printed as
``X0001 26 000047 K`` and stored as ``X000126000047K``. Reading tolerates spaces, dashes
and lower case, and refuses a wrong check character (a mistyped or misscanned id).
"""

import re
import secrets

from lims.errors import InvalidInput
from lims.identity.check import check_character, is_valid

MATERIAL_ID_LENGTH = 14
_SEPARATORS = re.compile(r"[\s\-]")
COI_PREFIX = "COI"
# No 0/O or 1/I: a chain-of-identity id is read aloud and copied by hand at clinics.
_COI_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def make_material_id(facility: str, year: int, sequence: int) -> str:
    """Compose a stored material id from its parts."""
    if not 0 <= sequence <= 999_999:
        raise ValueError(f"sequence {sequence} does not fit six digits")
    data = f"{facility}{year % 100:02d}{sequence:06d}"
    return data + check_character(data)


def format_material_id(material_id: str) -> str:
    """Print form: ``X0001 26 000047 K``."""
    m = material_id
    return f"{m[:5]} {m[5:7]} {m[7:13]} {m[13]}"


def parse_material_id(text: str) -> str:
    """Return the stored form of a typed or scanned id, or raise InvalidInput."""
    if not isinstance(text, str):
        raise InvalidInput("a material id is text such as 'X0001 26 000047 K'")
    compact = _SEPARATORS.sub("", text).upper()
    body_ok = compact[:-1].isalnum() and (compact[-1:].isalnum() or compact[-1:] == "*")
    if len(compact) != MATERIAL_ID_LENGTH or not body_ok or not compact.isascii():
        raise InvalidInput(
            f"{text!r} is not a material id: expected 14 characters such as 'X0001 26 000047 K'",
            field="material_id",
        )
    if not is_valid(compact):
        raise InvalidInput(
            f"{text!r} has a wrong check character (expected "
            f"{check_character(compact[:-1])}); re-scan or re-type the id",
            field="material_id",
        )
    return compact


def new_coi_id() -> str:
    """A random pseudonymous chain-of-identity id with a check character, COI-XXXX-XXXX-C."""
    body = "".join(secrets.choice(_COI_ALPHABET) for _ in range(8))
    return f"{COI_PREFIX}-{body[:4]}-{body[4:]}-{check_character(body)}"


def parse_coi_id(text: str) -> str:
    """Return the canonical chain-of-identity id, or raise InvalidInput."""
    compact = _SEPARATORS.sub("", text or "").upper()
    if not compact.startswith(COI_PREFIX) or len(compact) != len(COI_PREFIX) + 9:
        raise InvalidInput(
            f"{text!r} is not a chain-of-identity id (COI-XXXX-XXXX-C)", field="coi_id"
        )
    body = compact[len(COI_PREFIX) :]
    if not is_valid(body):
        raise InvalidInput(f"{text!r} has a wrong check character", field="coi_id")
    return f"{COI_PREFIX}-{body[:4]}-{body[4:8]}-{body[8]}"
