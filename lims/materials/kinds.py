"""Material kinds and the quantity dimension each kind is measured in."""

from enum import StrEnum

from lims.units import QuantityKind


class MaterialKind(StrEnum):
    LIPOASPIRATE = "lipoaspirate"
    SVF = "svf"
    ADSC_CULTURE = "adsc_culture"
    CM_BATCH = "cm_batch"
    AAPE_LOT = "aape_lot"
    DOSE = "dose"
    SCALP_BIOPSY = "scalp_biopsy"
    DP_CULTURE = "dp_culture"
    NANOFAT = "nanofat"


class Use(StrEnum):
    AUTOLOGOUS = "autologous"
    ALLOGENEIC = "allogeneic"


# The dimensions a kind's quantity may have. A dose is counted in vials when it is AAPE
# powder and in cells when it is a dermal papilla cell product.
KIND_DIMENSIONS: dict[MaterialKind, tuple[QuantityKind, ...]] = {
    MaterialKind.LIPOASPIRATE: (QuantityKind.VOLUME,),
    MaterialKind.SVF: (QuantityKind.CELLS,),
    MaterialKind.ADSC_CULTURE: (QuantityKind.CELLS,),
    MaterialKind.CM_BATCH: (QuantityKind.VOLUME,),
    MaterialKind.AAPE_LOT: (QuantityKind.VIALS,),
    MaterialKind.DOSE: (QuantityKind.VIALS, QuantityKind.CELLS),
    MaterialKind.SCALP_BIOPSY: (QuantityKind.MASS,),
    MaterialKind.DP_CULTURE: (QuantityKind.CELLS,),
    MaterialKind.NANOFAT: (QuantityKind.VOLUME,),
}

# Cultures grow: a cell count later than seeding is a measurement, not a conservation error.
GROWING_KINDS = frozenset({MaterialKind.ADSC_CULTURE, MaterialKind.DP_CULTURE})
CULTURE_KINDS = GROWING_KINDS
