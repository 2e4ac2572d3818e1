"""ISO 7064 mod 37-2 check characters, as ISBT 128 uses them for donation numbers.

ISBT 128 (transfusionguidelines.org Red Book annex 2; domain.md section C): map 0-9 to
0-9, A-Z to 10-35 and * to 36; weight each character by 2**(its position from the right,
counting the check position as 1); sum; the check value is (38 - sum mod 37) mod 37. The
example G123 498 654 321 gives H.
"""

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}


def check_value(data: str) -> int:
    """Return the mod 37-2 check value (0-36) for ``data`` (digits and capital letters)."""
    total = 0
    for ch in data:
        if ch not in _VALUE or ch == "*":
            raise ValueError(f"{ch!r} cannot appear in an ISBT 128 identifier")
        # Horner form of sum(value * 2**position): double, then add, modulo 37.
        total = ((total + _VALUE[ch]) * 2) % 37
    return (38 - total) % 37


def check_character(data: str) -> str:
    """Return the check character for ``data``: G123498654321 gives H."""
    return ALPHABET[check_value(data)]


def is_valid(data_with_check: str) -> bool:
    """True if the last character is the right check character for the rest."""
    if len(data_with_check) < 2:
        return False
    try:
        return check_character(data_with_check[:-1]) == data_with_check[-1]
    except ValueError:
        return False
