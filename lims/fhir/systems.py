"""The identifier systems, code systems and extensions the FHIR facade uses, named once.

They are URNs of this LIMS (no host name to keep registered); docs/fhir.md lists them.
"""

FHIR_VERSION = "4.3.0"  # R4B: the R4-compatible release fhir.resources models as R4B
CONTENT_TYPE = "application/fhir+json"

COI = "urn:lims:coi"  # the pseudonymous chain-of-identity id (21 CFR 1271.290)
ORDER = "urn:lims:order"  # a dose order's number, ORD-000001
MATERIAL = "urn:lims:material-id"  # ISBT 128 DIN-style material id, X000126000047K
LOT = "urn:lims:lot"  # the released AAPE or DP lot a dose was drawn from
PRODUCT = "urn:lims:product"  # aape | dp_cells (lims.orders.models.Product)
MATERIAL_KIND = "urn:lims:material-kind"  # lipoaspirate | scalp_biopsy | ...
LIMS_STATUS = "urn:lims:status"  # the lims status or state behind a FHIR status

_EXTENSION = "urn:lims:fhir:extension:"
SESSION_NUMBER = _EXTENSION + "session-number"  # valuePositiveInt: session n of N
SESSIONS_TOTAL = _EXTENSION + "sessions-total"  # valuePositiveInt: N
SHIP_TO = _EXTENSION + "ship-to"  # valueString
# R4's BiologicallyDerivedProduct has no expiry; R5 has, and FHIR's cross-version
# extensions carry an R5 element in R4 under this URL.
EXPIRATION_DATE = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-BiologicallyDerivedProduct"
    ".expirationDate"
)


def fhir_id(lims_id: str) -> str:
    """A resource id for a lims id: FHIR ids allow [A-Za-z0-9-.], and a mod 37-2 check
    character may be '*', which becomes '.' (no lims id contains a '.')."""
    return lims_id.replace("*", ".")


def lims_id(resource_id: str) -> str:
    """The lims id (chain-of-identity id, material id, order number) of a resource id."""
    return resource_id.strip().upper().replace(".", "*")
