"""Import every table so that metadata (migrations, tests) sees the whole schema."""

from lims.custody.models import CustodyEvent, CustodyHead, CustodyMaterial
from lims.materials.models import IdSequence, LineageEdge, Material, StorageLocation
from lims.models_base import metadata
from lims.parties.models import Clinic, Instrument, Patient, ReagentLot, User
from lims.sops.models import SopVersion
from lims.steps.models import Step, StepInput, StepLoss, StepResource

__all__ = [
    "Clinic",
    "CustodyEvent",
    "CustodyHead",
    "CustodyMaterial",
    "IdSequence",
    "Instrument",
    "LineageEdge",
    "Material",
    "Patient",
    "ReagentLot",
    "SopVersion",
    "Step",
    "StepInput",
    "StepLoss",
    "StepResource",
    "StorageLocation",
    "User",
    "metadata",
]
