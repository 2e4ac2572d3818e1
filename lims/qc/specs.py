"""Release specifications as data (domain.md section B), per product kind and SOP version.

A test is either qualitative (a result from a fixed list, some of which pass) or a
quantity with limits; ``reported`` tests must be present but have no limit (the lab has
not validated one yet). Every limit names its source.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from lims.materials.kinds import MaterialKind
from lims.units import QuantityKind, constant_quantity, parse_quantity


class QcTest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    name: str
    method: str
    quantity_kind: QuantityKind | None = None
    results: list[str] | None = None  # qualitative: the allowed entries
    passing: list[str] | None = None  # qualitative: which of them pass
    min: str | None = None
    max: str | None = None
    required: bool = True
    source: str = ""

    def evaluate(self, value: object) -> tuple[bool | None, str]:
        """(passed, reason); passed is None for a reported test without limits."""
        if self.quantity_kind is None:
            assert self.results is not None and self.passing is not None
            ok = value in self.passing
            return ok, "" if ok else f"{value} (passes: {', '.join(self.passing)})"
        q = parse_quantity(value, self.quantity_kind)
        if self.min is None and self.max is None:
            return None, ""
        low = constant_quantity(self.min, self.quantity_kind) if self.min else None
        high = constant_quantity(self.max, self.quantity_kind) if self.max else None
        if low is not None and q < low:
            return False, f"{q} is below the limit {self.min}"
        if high is not None and q > high:
            return False, f"{q} is above the limit {self.max}"
        return True, ""


class Specification(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    version: int
    kind: MaterialKind
    sop_code: str  # the SOP whose product this specification releases
    sop_version: int
    tests: list[QcTest]

    def test(self, code: str) -> QcTest | None:
        return next((t for t in self.tests if t.code == code), None)


STERILITY = QcTest(
    code="sterility",
    name="Sterility",
    method="USP <71> FTM 30-35 degC + SCDM 20-25 degC, 14 d",
    results=["no growth", "growth"],
    passing=["no growth"],
    source="[34]; BACT/ALERT [32]",
)
MYCOPLASMA = QcTest(
    code="mycoplasma",
    name="Mycoplasma",
    method="NAT per Ph. Eur. 2.6.7, LOD <= 10 CFU/mL",
    results=["not detected", "detected"],
    passing=["not detected"],
    source="[35]",
)
# USP <85>: K = 5 EU/kg; 70 kg -> 350 EU per dose; a 4 mL reconstituted dose -> 87.5 EU/mL.
ENDOTOXIN_AAPE = QcTest(
    code="endotoxin",
    name="Endotoxin",
    method="USP <85> LAL",
    quantity_kind=QuantityKind.ENDOTOXIN_CONCENTRATION,
    max="87.5 EU/mL",
    source="K/M with K = 5 EU/kg, 70 kg, 4 mL dose [33][I]",
)
ENDOTOXIN_CELLS = QcTest(
    code="endotoxin",
    name="Endotoxin",
    method="USP <85> LAL",
    quantity_kind=QuantityKind.ENDOTOXIN_CONCENTRATION,
    max="70 EU/mL",
    source="GMP ASC spec < 70 IU/mL [32]",
)

SPECIFICATIONS: list[Specification] = [
    Specification(
        code="AAPE-LOT-SPEC",
        version=1,
        kind=MaterialKind.AAPE_LOT,
        sop_code="AAPE-FILL",
        sop_version=1,
        tests=[
            STERILITY,
            ENDOTOXIN_AAPE,
            MYCOPLASMA,
            QcTest(
                code="residual_moisture",
                name="Residual moisture",
                method="Karl Fischer",
                quantity_kind=QuantityKind.FRACTION,
                min="0.5 %",
                max="2 %",
                source="0.5-2 % by KF [47]",
            ),
            QcTest(
                code="protein",
                name="Total protein per vial (reconstituted)",
                method="BCA",
                quantity_kind=QuantityKind.MASS_CONCENTRATION,
                source="BCA [20]; reported for the label, no validated limit [I]",
            ),
            QcTest(
                code="vegf",
                name="VEGF",
                method="ELISA",
                quantity_kind=QuantityKind.MASS_CONCENTRATION,
                required=False,
                source="VEGF ~711 pg/mL in freeze-dried hypoxic ASC-CM [18]",
            ),
            QcTest(
                code="appearance",
                name="Cake appearance and reconstitution",
                method="visual; reconstitution in 4 mL WFI",
                results=["conforms", "does not conform"],
                passing=["conforms"],
                source="[I]",
            ),
        ],
    ),
    Specification(
        code="SVF-SPEC",
        version=1,
        kind=MaterialKind.SVF,
        sop_code="SVF-SEP",
        sop_version=1,
        tests=[
            STERILITY,
            ENDOTOXIN_CELLS,
            MYCOPLASMA,
            QcTest(
                code="viability",
                name="Viability",
                method="7-AAD flow cytometry",
                quantity_kind=QuantityKind.FRACTION,
                min="70 %",
                source="SVF >= 70 % [15][R]",
            ),
            QcTest(
                code="cell_count",
                name="Nucleated cells",
                method="automated counter",
                quantity_kind=QuantityKind.CELLS,
                min="1e6 cell",
                source="[I]; scalp dose 7-9e6 live cells [30]",
            ),
            QcTest(
                code="identity",
                name="Stromal identity (CD34+ CD45- CD31-)",
                method="flow cytometry, adipose-specific panel",
                results=["conforms", "does not conform"],
                passing=["conforms"],
                source="fresh SVF stromal cells CD34+CD45-CD31- [10]; [15][R]",
            ),
        ],
    ),
    Specification(
        code="DP-SPEC",
        version=1,
        kind=MaterialKind.DP_CULTURE,
        sop_code="DP-MICRODISSECT",
        sop_version=1,
        tests=[
            STERILITY,
            ENDOTOXIN_CELLS,
            MYCOPLASMA,
            QcTest(
                code="viability",
                name="Viability",
                method="trypan blue",
                quantity_kind=QuantityKind.FRACTION,
                min="80 %",
                source="cultured cells > 80 % [32]",
            ),
            QcTest(
                code="cell_count",
                name="Viable cells",
                method="automated counter",
                quantity_kind=QuantityKind.CELLS,
                min="3e5 cell",
                source="DSC doses 3e5-7.5e6 cells [29]",
            ),
        ],
    ),
]


def specification_for(
    kind: str, sop_code: str | None, sop_version: int | None
) -> Specification | None:
    """The specification that releases a ``kind`` made by that SOP version (lineage root
    SOP for cultures that passaged: the DP line keeps DP-MICRODISSECT's specification)."""
    for spec in SPECIFICATIONS:
        if (
            spec.kind == kind
            and (sop_code is None or spec.sop_code == sop_code)
            and (sop_version is None or spec.sop_version == sop_version)
        ):
            return spec
    return None


def limit_text(test: QcTest) -> str:
    if test.quantity_kind is None:
        return " or ".join(test.passing or [])
    parts = []
    if test.min:
        parts.append(f">= {test.min}")
    if test.max:
        parts.append(f"<= {test.max}")
    return " and ".join(parts) or "reported"
