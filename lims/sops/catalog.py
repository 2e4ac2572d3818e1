"""The SOP set in force, version 1 of each stage.

Numbers come from ../shared/docs/domain.md (bracketed numbers are its references; [I]
marks a lab decision that the lab's own validation must confirm). Changing a definition
means adding a new version here; `sync_catalog` refuses an edited version in place.
"""

from lims.materials.kinds import MaterialKind as K
from lims.sops.spec import (
    InputMode,
    InputSpec,
    Limit,
    OutputSpec,
    ParameterSpec,
    ParamType,
    SopDefinition,
)
from lims.units import QuantityKind as Q


def _q(name: str, label: str, kind: Q, **kw: object) -> ParameterSpec:
    return ParameterSpec(name=name, label=label, type=ParamType.QUANTITY, quantity_kind=kind, **kw)


def _choice(name: str, label: str, choices: list[str], **kw: object) -> ParameterSpec:
    return ParameterSpec(name=name, label=label, type=ParamType.CHOICE, choices=choices, **kw)


def _bool(name: str, label: str, **kw: object) -> ParameterSpec:
    return ParameterSpec(name=name, label=label, type=ParamType.BOOLEAN, **kw)


def _int(name: str, label: str, **kw: object) -> ParameterSpec:
    return ParameterSpec(name=name, label=label, type=ParamType.INTEGER, **kw)


def _text(name: str, label: str, **kw: object) -> ParameterSpec:
    return ParameterSpec(name=name, label=label, type=ParamType.TEXT, **kw)


_VIABILITY_SVF = _q(
    "viability",
    "Viability",
    Q.FRACTION,
    min="0 %",
    max="100 %",
    accept_min="70 %",
    source="SVF >=70 % viable [15][R]; >80 % typical [9][10]",
    typical="86 %",
)
_CULTURE_VIABILITY = _q(
    "viability",
    "Viability",
    Q.FRACTION,
    min="0 %",
    max="100 %",
    warn_min="80 %",
    source="cultured ASC >80 % [32]",
    typical="92 %",
)


def _harvested_cells(typical: str) -> ParameterSpec:
    return _q(
        "harvested_cells",
        "Viable cells harvested",
        Q.CELLS,
        min="1 cell",
        max="1e11 cell",
        typical=typical,
    )


_IDENTITY = _bool(
    "identity_verified",
    "Two identifiers on the container match the shipment record",
    accept_equals=True,
    source="FDA CAR-T draft guidance: >=2 identifiers [43]",
    typical=True,
)

SOPS: list[SopDefinition] = [
    SopDefinition(
        code="LIPO-INTAKE",
        version=1,
        stage="intake",
        title="Intake of lipoaspirate",
        inputs=[
            InputSpec(
                kinds=[K.LIPOASPIRATE],
                mode=InputMode.INSPECT,
                states=["RECEIVED"],
                state_after="ACCEPTED",
                state_if_rejected="REJECTED",
            )
        ],
        parameters=[
            _q(
                "time_since_harvest",
                "Time since harvest",
                Q.DURATION,
                derived=True,
                min="0 h",
                max="720 h",
                warn_max="24 h",
                accept_max="72 h",
                source="ASCs isolable <=72 h, first 24 h optimal [11]",
            ),
            _q(
                "transport_temperature",
                "Transport temperature",
                Q.TEMPERATURE,
                min="-30 degC",
                max="45 degC",
                accept_min="2 degC",
                accept_max="25 degC",
                source="[I] cold chain 2-25 degC; overnight at +4 degC cost 11.6 % viability [10]",
                typical="6 degC",
            ),
            _bool(
                "temperature_excursion",
                "Temperature excursion reported by the logger",
                typical=False,
            ),
            _q(
                "received_volume",
                "Volume received",
                Q.VOLUME,
                min="1 mL",
                max="2000 mL",
                source="100 mL fat gives ~2e7 SVF cells [30]",
                typical="120 mL",
            ),
            _choice(
                "donor_site",
                "Donor site",
                ["abdomen", "flank", "thigh"],
                source="volume and donor site required [30]",
                typical="abdomen",
            ),
            _IDENTITY,
            _bool(
                "container_intact",
                "Container intact, seal unbroken",
                accept_equals=True,
                typical=True,
            ),
        ],
        notes="Warn >24 h, reject >72 h after harvest (domain.md A).",
    ),
    SopDefinition(
        code="SVF-SEP",
        version=1,
        stage="svf",
        title="SVF separation by collagenase digestion",
        inputs=[
            InputSpec(
                kinds=[K.LIPOASPIRATE],
                mode=InputMode.CONSUME,
                states=["ACCEPTED", "IN_PROCESS"],
                state_after="IN_PROCESS",
                state_after_depleted="CONSUMED",
            )
        ],
        outputs=[
            OutputSpec(
                kind=K.SVF,
                state="CREATED",
                state_if_accepted="QC_PASSED",
                state_if_rejected="QC_FAILED",
                container="50 mL tube",
            )
        ],
        parameters=[
            _choice(
                "collagenase_type", "Collagenase type", ["I", "II"], source="[12][13]", typical="I"
            ),
            _q(
                "collagenase_concentration",
                "Collagenase concentration",
                Q.FRACTION,
                min="0.05 %",
                max="0.2 %",
                source="0.075 % [8][R]; 0.1 % [13]",
                typical="0.1 %",
            ),
            _q(
                "digestion_temperature",
                "Digestion temperature",
                Q.TEMPERATURE,
                min="36 degC",
                max="38 degC",
                source="37 degC [8][R]",
                typical="37 degC",
            ),
            _q(
                "digestion_time",
                "Digestion time",
                Q.DURATION,
                min="30 min",
                max="90 min",
                source="30 min [8][R]; 60-90 min collagenase II [12]",
                typical="45 min",
            ),
            _q(
                "centrifugation_rcf",
                "Centrifugation force",
                Q.RCF,
                min="190 xg",
                max="1700 xg",
                source="190 g [12]; 1200 g [8][R]; 1660 g wash [13]",
                typical="1200 x g",
            ),
            _q(
                "centrifugation_time",
                "Centrifugation time",
                Q.DURATION,
                min="3 min",
                max="10 min",
                source="3 min [13]; 10 min [8][12]",
                typical="10 min",
            ),
            _choice(
                "lysis",
                "Red-cell lysis",
                ["NH4Cl", "NH4Cl/KHCO3/EDTA", "none"],
                source="160 mM NH4Cl [8][R]; NH4Cl/KHCO3/EDTA [12]",
                typical="NH4Cl",
            ),
            _q(
                "filter_mesh",
                "Cell strainer mesh",
                Q.LENGTH,
                min="40 um",
                max="100 um",
                source="100 um filter [8][R]",
                typical="100 um",
            ),
            _VIABILITY_SVF,
            _q(
                "yield_per_ml",
                "Nucleated cells per mL of lipoaspirate",
                Q.CELL_CONCENTRATION,
                derived=True,
                min="0 cell/mL",
                warn_min="5e4 cell/mL",
                warn_max="2e6 cell/mL",
                source="~1.85e5 cells/mL [10]; flag out-of-trend [I]",
            ),
        ],
        instrument_types=["centrifuge", "shaking_incubator", "cell_counter"],
        reagent_types=["collagenase"],
    ),
    SopDefinition(
        code="ADSC-SEED",
        version=1,
        stage="culture",
        title="Seeding SVF into ADSC culture (P0)",
        inputs=[
            InputSpec(
                kinds=[K.SVF],
                mode=InputMode.CONSUME,
                states=["QC_PASSED", "TO_CULTURE", "CRYOSTORED"],
                state_after="TO_CULTURE",
                state_after_depleted="CONSUMED",
            )
        ],
        outputs=[
            OutputSpec(kind=K.ADSC_CULTURE, state="SEEDED", max_count=20, container="T175 flask")
        ],
        parameters=[
            _q(
                "culture_area",
                "Total culture area",
                Q.AREA,
                min="25 cm**2",
                max="20000 cm**2",
                typical="350 cm^2",
            ),
            _q(
                "seeding_density",
                "Seeding density",
                Q.CELL_DENSITY,
                derived=True,
                min="1000 cell/cm**2",
                max="5000 cell/cm**2",
                source="seed 2e3/cm2 [12]",
            ),
            _choice(
                "medium",
                "Medium",
                ["DMEM/F12 + 10 % FBS", "DMEM/F12 + hPL", "serum-free"],
                typical="DMEM/F12 + hPL",
            ),
        ],
        instrument_types=["biosafety_cabinet", "co2_incubator"],
        reagent_types=["culture_medium"],
    ),
    SopDefinition(
        code="CULTURE-COUNT",
        version=1,
        stage="culture",
        title="Count a culture",
        inputs=[
            InputSpec(
                kinds=[K.ADSC_CULTURE, K.DP_CULTURE],
                mode=InputMode.MEASURE,
                states=["SEEDED", "EXPANDING"],
                state_after="EXPANDING",
            )
        ],
        parameters=[
            _q(
                "cell_count",
                "Viable cells counted",
                Q.CELLS,
                min="1 cell",
                max="1e11 cell",
                typical="2.8e6 cells",
            ),
            _CULTURE_VIABILITY,
            _q("confluence", "Confluence", Q.FRACTION, min="0 %", max="100 %", typical="85 %"),
        ],
        instrument_types=["cell_counter"],
    ),
    SopDefinition(
        code="ADSC-PASSAGE",
        version=1,
        stage="culture",
        title="Passage an ADSC culture",
        inputs=[
            InputSpec(
                kinds=[K.ADSC_CULTURE],
                mode=InputMode.CONSUME,
                states=["SEEDED", "EXPANDING"],
                state_after="EXPANDING",
                state_after_depleted="PASSAGED",
            )
        ],
        outputs=[
            OutputSpec(kind=K.ADSC_CULTURE, state="SEEDED", max_count=20, container="T175 flask")
        ],
        parameters=[
            _harvested_cells(typical="2.8e6 cells"),
            _q(
                "confluence",
                "Confluence at passage",
                Q.FRACTION,
                min="50 %",
                max="100 %",
                warn_min="80 %",
                warn_max="90 %",
                source="passage at 80-90 % [47]",
                typical="85 %",
            ),
            _CULTURE_VIABILITY,
            _q(
                "culture_area",
                "Total culture area re-plated",
                Q.AREA,
                min="25 cm**2",
                max="20000 cm**2",
                typical="700 cm^2",
            ),
            _q(
                "seeding_density",
                "Re-plating density",
                Q.CELL_DENSITY,
                derived=True,
                min="1000 cell/cm**2",
                max="5000 cell/cm**2",
                source="replate 3e3/cm2 [12]",
            ),
        ],
        limits={
            "max_passage": Limit(value="5", source="use before P5 (senescence) [16]"),
            "max_population_doublings": Limit(
                value="10", source="growth falls at ~10 population doublings [47]"
            ),
        },
        instrument_types=["biosafety_cabinet", "cell_counter"],
        reagent_types=["culture_medium"],
    ),
    SopDefinition(
        code="HYPOXIA-START",
        version=1,
        stage="conditioning",
        title="Start hypoxic conditioning",
        inputs=[
            InputSpec(
                kinds=[K.ADSC_CULTURE],
                mode=InputMode.INSPECT,
                states=["EXPANDING"],
                state_after="CONDITIONING",
            )
        ],
        parameters=[
            _q(
                "o2_setpoint",
                "O2 setpoint",
                Q.FRACTION,
                min="1 %",
                max="5 %",
                source="1, 2, 5 % O2 in ADSC studies [17]; setpoint 1-5 % [I]",
                typical="2 %",
            ),
            _choice(
                "medium",
                "Conditioning medium",
                ["serum-free", "low-serum"],
                source="2 % O2 serum-free tolerated [17]",
                typical="serum-free",
            ),
        ],
        instrument_types=["trigas_incubator"],
        reagent_types=["culture_medium"],
    ),
    SopDefinition(
        code="CM-HARVEST",
        version=1,
        stage="conditioning",
        title="Harvest conditioned medium (ADSC-CM)",
        inputs=[
            InputSpec(
                kinds=[K.ADSC_CULTURE],
                mode=InputMode.REFERENCE,
                states=["CONDITIONING"],
                state_after="HARVESTED",
            )
        ],
        outputs=[
            OutputSpec(
                kind=K.CM_BATCH,
                state="COLLECTED",
                state_if_rejected="REJECTED",
                container="500 mL bottle",
            )
        ],
        parameters=[
            _q(
                "conditioning_duration",
                "Time under hypoxia",
                Q.DURATION,
                derived=True,
                min="0 h",
                max="240 h",
                accept_min="24 h",
                accept_max="72 h",
                source="CM at 48 h; no notable death <0.1 % O2 to 72 h [17]; 24-72 h [I]",
            ),
            _q(
                "o2_mean",
                "Mean O2 over the conditioning (from the incubator log)",
                Q.FRACTION,
                min="0 %",
                max="21 %",
                accept_min="1 %",
                accept_max="5 %",
                source="[17][I]",
                typical="2.1 %",
            ),
            _text(
                "o2_log_ref",
                "Incubator O2 log reference",
                source="attach O2 log [I]",
                typical="TRIGAS-LOG-0001",
            ),
        ],
        instrument_types=["trigas_incubator"],
    ),
    SopDefinition(
        code="CM-CLARIFY",
        version=1,
        stage="cm_processing",
        title="Clarify and filter conditioned medium",
        inputs=[
            InputSpec(
                kinds=[K.CM_BATCH],
                mode=InputMode.IN_PLACE,
                states=["COLLECTED"],
                state_after="CLARIFIED",
            )
        ],
        parameters=[
            _q(
                "clarification_rcf",
                "Clarification force",
                Q.RCF,
                min="1000 xg",
                max="20000 xg",
                source="13,000 g x 10 min [47]",
                typical="13000 x g",
            ),
            _q(
                "clarification_time",
                "Clarification time",
                Q.DURATION,
                min="5 min",
                max="30 min",
                source="[47]",
                typical="10 min",
            ),
            _q(
                "clarification_temperature",
                "Clarification temperature",
                Q.TEMPERATURE,
                min="2 degC",
                max="8 degC",
                source="4 degC [47]",
                typical="4 degC",
            ),
            _choice(
                "filter_pore", "Sterilising filter", ["0.22 um"], source="[I]", typical="0.22 um"
            ),
            _choice(
                "hold",
                "Hold before lyophilisation",
                ["fresh", "frozen"],
                source="freezing before concentration -34 % protein [22]",
                typical="fresh",
            ),
        ],
        instrument_types=["centrifuge"],
        reagent_types=["sterile_filter"],
    ),
    SopDefinition(
        code="AAPE-FILL",
        version=1,
        stage="lyophilisation",
        title="Pool CM and fill vials for lyophilisation",
        inputs=[
            InputSpec(
                kinds=[K.CM_BATCH],
                mode=InputMode.CONSUME,
                max_count=50,
                states=["CLARIFIED", "CONCENTRATED", "HELD_FROZEN"],
                state_after_depleted="POOLED_INTO_LOT",
            )
        ],
        outputs=[
            OutputSpec(
                kind=K.AAPE_LOT, state="FILLED", container="2R glass vial", shelf_life="24 month"
            )
        ],
        parameters=[
            _q(
                "fill_volume",
                "Fill volume per vial",
                Q.VOLUME,
                min="0.5 mL",
                max="5 mL",
                source="[I]",
                typical="4 mL",
            ),
            _choice(
                "cryoprotectant",
                "Cryoprotectant",
                ["trehalose", "none"],
                source="trehalose helped stability [21]; cryoprotectant [20]",
                typical="trehalose",
            ),
        ],
        conversions={"vial": "fill_volume"},
        instrument_types=["biosafety_cabinet"],
        notes="Shelf life 24 months at -80 degC until in-house stability says otherwise "
        "(30 months published [21]; shelf life only from in-house stability).",
    ),
    SopDefinition(
        code="AAPE-LYO",
        version=1,
        stage="lyophilisation",
        title="Lyophilisation cycle",
        inputs=[
            InputSpec(
                kinds=[K.AAPE_LOT],
                mode=InputMode.INSPECT,
                states=["FILLED"],
                state_after="LYOPHILISED",
                state_if_rejected="REJECTED",
            )
        ],
        parameters=[
            _q(
                "freezing_shelf_temperature",
                "Freezing shelf temperature",
                Q.TEMPERATURE,
                min="-80 degC",
                max="-40 degC",
                source="freeze <= -40 degC [23][R]",
                typical="-45 degC",
            ),
            _q(
                "primary_drying_shelf_temperature",
                "Primary drying shelf temperature",
                Q.TEMPERATURE,
                min="-45 degC",
                max="0 degC",
                source="2-5 degC below collapse temperature [23][R]",
                typical="-25 degC",
            ),
            _q(
                "primary_drying_pressure",
                "Primary drying chamber pressure",
                Q.PRESSURE,
                min="50 mTorr",
                max="200 mTorr",
                source="~50-200 mTorr [23][R]",
                typical="100 mTorr",
            ),
            _q(
                "secondary_drying_temperature",
                "Secondary drying shelf temperature",
                Q.TEMPERATURE,
                min="20 degC",
                max="45 degC",
                source="~40 degC [23][R]",
                typical="40 degC",
            ),
            _q(
                "secondary_drying_time",
                "Secondary drying time",
                Q.DURATION,
                min="3 h",
                max="6 h",
                source="3-6 h [23][R]",
                typical="4 h",
            ),
            _q(
                "residual_moisture",
                "Residual moisture (Karl Fischer)",
                Q.FRACTION,
                min="0 %",
                max="20 %",
                accept_min="0.5 %",
                accept_max="2 %",
                source="0.5-2 % by KF [47]",
                typical="1.2 %",
            ),
            _text(
                "cycle_trace_ref",
                "Cycle trace reference",
                source="store recipe + trace",
                typical="FD-CYCLE-0001",
            ),
        ],
        instrument_types=["freeze_dryer", "karl_fischer_titrator"],
    ),
    SopDefinition(
        code="DOSE-ALLOCATE",
        version=1,
        stage="dispensing",
        title="Allocate a dose to a patient",
        inputs=[
            InputSpec(
                kinds=[K.AAPE_LOT, K.DP_CULTURE],
                mode=InputMode.CONSUME,
                states=["RELEASED"],
                # The last vial allocated: the lot stays traceable, no longer allocatable.
                state_after_depleted="DEPLETED",
            )
        ],
        outputs=[
            OutputSpec(
                kind=K.DOSE,
                state="ALLOCATED",
                inherit_expiry=True,
                container="labelled dose carton",
            )
        ],
        parameters=[
            _text("recipient_coi", "Recipient chain-of-identity id"),
            _text("recipient_identifier_1", "Recipient identifier 1"),
            _text("recipient_identifier_2", "Recipient identifier 2"),
            _int(
                "session_number",
                "Treatment session number",
                min="1",
                max="12",
                source="4-6 sessions [2]; 6 sessions [3]",
                typical=1,
            ),
            _q(
                "reconstitution_volume",
                "Reconstitution volume",
                Q.VOLUME,
                required=False,
                min="0.5 mL",
                max="10 mL",
                source="2 mL per half-scalp [25]",
            ),
        ],
        limits={
            "dp_dose_min_cells": Limit(value="3e5", source="DSC doses 3e5-7.5e6 cells [29]"),
            "dp_dose_max_cells": Limit(value="7.5e6", source="[29]"),
        },
    ),
    SopDefinition(
        code="BIOPSY-INTAKE",
        version=1,
        stage="follicle",
        title="Intake of a scalp biopsy",
        inputs=[
            InputSpec(
                kinds=[K.SCALP_BIOPSY],
                mode=InputMode.INSPECT,
                states=["RECEIVED"],
                state_after="ACCEPTED",
                state_if_rejected="REJECTED",
            )
        ],
        parameters=[
            _q(
                "time_since_harvest",
                "Time since biopsy",
                Q.DURATION,
                derived=True,
                min="0 h",
                max="720 h",
                warn_max="24 h",
                accept_max="48 h",
                source="[I] lab-validated window; no published limit in domain.md",
            ),
            _q(
                "transport_temperature",
                "Transport temperature",
                Q.TEMPERATURE,
                min="-30 degC",
                max="45 degC",
                accept_min="2 degC",
                accept_max="8 degC",
                source="[I]",
                typical="4 degC",
            ),
            _q(
                "punch_diameter",
                "Punch diameter",
                Q.LENGTH,
                min="1000 um",
                max="4000 um",
                source="2x2 mm biopsies [7]",
                typical="2000 um",
            ),
            _IDENTITY,
        ],
    ),
    SopDefinition(
        code="DP-MICRODISSECT",
        version=1,
        stage="follicle",
        title="Microdissect dermal papillae and seed DP culture",
        inputs=[
            InputSpec(
                kinds=[K.SCALP_BIOPSY],
                mode=InputMode.CONSUME,
                states=["ACCEPTED"],
                state_after_depleted="MICRODISSECTED",
            )
        ],
        outputs=[
            OutputSpec(kind=K.DP_CULTURE, state="SEEDED", max_count=10, container="T25 flask")
        ],
        parameters=[
            _choice(
                "method",
                "Isolation method",
                ["microdissection"],
                source="human DP must be microdissected; enzymes fail [27]",
                typical="microdissection",
            ),
            _int("papillae_isolated", "Papillae isolated", min="1", max="500", typical=40),
        ],
        instrument_types=["stereo_microscope", "biosafety_cabinet"],
        reagent_types=["culture_medium"],
    ),
    SopDefinition(
        code="DP-PASSAGE",
        version=1,
        stage="follicle",
        title="Passage a dermal papilla culture",
        inputs=[
            InputSpec(
                kinds=[K.DP_CULTURE],
                mode=InputMode.CONSUME,
                states=["SEEDED", "EXPANDING"],
                state_after="EXPANDING",
                state_after_depleted="PASSAGED",
            )
        ],
        outputs=[
            OutputSpec(kind=K.DP_CULTURE, state="SEEDED", max_count=20, container="T75 flask")
        ],
        parameters=[
            _harvested_cells(typical="2e6 cells"),
            _CULTURE_VIABILITY,
            _q(
                "culture_area",
                "Total culture area re-plated",
                Q.AREA,
                min="25 cm**2",
                max="20000 cm**2",
                typical="175 cm^2",
            ),
            _q(
                "seeding_density",
                "Re-plating density",
                Q.CELL_DENSITY,
                derived=True,
                min="1000 cell/cm**2",
                max="10000 cell/cm**2",
                source="[I]",
            ),
        ],
        limits={
            "max_population_doublings": Limit(
                value="36", source="DP ~5 doublings/passage, inductive at ~36 [28]"
            ),
        },
        instrument_types=["biosafety_cabinet", "cell_counter"],
        reagent_types=["culture_medium"],
        notes="Track doublings, not just passage (domain.md A).",
    ),
    SopDefinition(
        code="DP-FORMULATE",
        version=1,
        stage="follicle",
        title="Formulate dermal papilla cells for injection",
        inputs=[
            InputSpec(
                kinds=[K.DP_CULTURE],
                mode=InputMode.INSPECT,
                states=["EXPANDING"],
                state_after="FORMULATED",
            )
        ],
        parameters=[
            _q(
                "formulation_volume",
                "Formulation volume",
                Q.VOLUME,
                min="0.1 mL",
                max="20 mL",
                typical="2 mL",
            ),
            _CULTURE_VIABILITY,
        ],
        instrument_types=["biosafety_cabinet"],
    ),
    SopDefinition(
        code="NANOFAT-PREP",
        version=1,
        stage="nanofat",
        title="Prepare nanofat (point of care)",
        inputs=[
            InputSpec(
                kinds=[K.LIPOASPIRATE],
                mode=InputMode.CONSUME,
                states=["ACCEPTED", "IN_PROCESS"],
                state_after="IN_PROCESS",
                state_after_depleted="CONSUMED",
            )
        ],
        outputs=[
            OutputSpec(kind=K.NANOFAT, state="PREPARED", shelf_life="4 h", container="1 mL syringe")
        ],
        parameters=[
            _int(
                "emulsification_passes",
                "Syringe-to-syringe passes",
                min="30",
                max="60",
                source="30 passes [31]",
                typical=30,
            ),
            _q(
                "filter_mesh",
                "Filter mesh",
                Q.LENGTH,
                min="400 um",
                max="600 um",
                source="filtered microfat [31]",
                typical="500 um",
            ),
            _int(
                "needle_gauge",
                "Injection needle gauge",
                min="25",
                max="30",
                source="injectable via 27G [31]",
                typical=27,
            ),
        ],
        notes="Point of care: use within 4 h [I].",
    ),
]

CATALOG: dict[tuple[str, int], SopDefinition] = {(s.code, s.version): s for s in SOPS}
