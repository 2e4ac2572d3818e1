import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.iso7064 import mod_37_2

from lims.errors import InvalidInput
from lims.identity.check import check_character, is_valid
from lims.identity.codes import (
    format_material_id,
    make_material_id,
    new_coi_id,
    parse_coi_id,
    parse_material_id,
)

ALNUM = string.digits + string.ascii_uppercase


def test_isbt_example_gives_h() -> None:
    assert check_character("G123498654321") == "H"


@given(st.text(alphabet=ALNUM, min_size=1, max_size=20))
def test_agrees_with_python_stdnum(data: str) -> None:
    assert check_character(data) == mod_37_2.calc_check_digit(data)


@given(st.text(alphabet=ALNUM, min_size=2, max_size=16), st.data())
def test_detects_every_single_substitution(data: str, draw: st.DataObject) -> None:
    full = data + check_character(data)
    pos = draw.draw(st.integers(0, len(full) - 1))
    replacement = draw.draw(st.sampled_from(ALNUM).filter(lambda c: c != full[pos]))
    typo = full[:pos] + replacement + full[pos + 1 :]
    if pos == len(full) - 1 and replacement == "*":
        return
    assert not is_valid(typo)


@given(st.text(alphabet=ALNUM, min_size=3, max_size=16), st.data())
def test_detects_adjacent_transpositions(data: str, draw: st.DataObject) -> None:
    pos = draw.draw(st.integers(0, len(data) - 2))
    if data[pos] == data[pos + 1]:
        return
    full = data + check_character(data)
    swapped = full[:pos] + full[pos + 1] + full[pos] + full[pos + 2 :]
    assert not is_valid(swapped)


def test_material_id_round_trip_and_print_form() -> None:
    mid = make_material_id("X0001", 2026, 47)
    assert len(mid) == 14 and mid.startswith("X000126000047")
    assert is_valid(mid)
    printed = format_material_id(mid)
    assert printed == f"X0001 26 000047 {mid[-1]}"
    assert parse_material_id(printed) == mid
    assert parse_material_id(printed.lower().replace(" ", "-")) == mid


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "X0001",
        "X000126000047",
        "X00012600004 7 K 1",
        "'; DROP TABLE material; --",
        "Ｘ0001260000477",
        None,
    ],
)
def test_malformed_material_ids_are_refused(bad: object) -> None:
    with pytest.raises(InvalidInput):
        parse_material_id(bad)  # type: ignore[arg-type]


def test_wrong_check_character_says_so() -> None:
    mid = make_material_id("X0001", 2026, 47)
    wrong = mid[:-1] + ("A" if mid[-1] != "A" else "B")
    with pytest.raises(InvalidInput, match="wrong check character"):
        parse_material_id(wrong)


def test_coi_ids_are_random_valid_and_parse_back() -> None:
    ids = {new_coi_id() for _ in range(200)}
    assert len(ids) == 200
    for coi in ids:
        assert parse_coi_id(coi.lower()) == coi
    one = next(iter(ids))
    with pytest.raises(InvalidInput):
        parse_coi_id(one[:-1] + ("2" if one[-1] != "2" else "3"))


def test_star_is_a_valid_check_character_in_ids() -> None:
    seq = next(n for n in range(1, 2000) if make_material_id("X0001", 2026, n).endswith("*"))
    mid = make_material_id("X0001", 2026, seq)
    assert parse_material_id(format_material_id(mid)) == mid
