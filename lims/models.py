"""Import every table so that metadata (migrations, tests) sees the whole schema."""

from lims.auth.models import ApiKey, IdempotencyRecord, SignInThrottle
from lims.custody.models import (
    CustodyCheckpoint,
    CustodyEvent,
    CustodyHead,
    CustodyMaterial,
    CustodyTimestamp,
)
from lims.doses.models import DoseAtClinic, DoseDisposition, DoseLoggerFile
from lims.idempotency.models import FlowIdempotency
from lims.materials.models import IdSequence, LineageEdge, Material, StorageLocation
from lims.models_base import metadata
from lims.notifications.models import (
    ClinicContact,
    DeliveryAttempt,
    Notification,
    NotificationDelivery,
    WebhookEndpoint,
)
from lims.orders.models import DoseOrder
from lims.parties.models import Clinic, Instrument, Patient, ReagentLot, User
from lims.qc.models import Deviation, DonorEligibility, QcResult
from lims.recalls.models import Recall, RecallClinic, RecallItem
from lims.signatures.models import Signature
from lims.sops.models import SopVersion
from lims.steps.models import Step, StepCorrection, StepInput, StepLoss, StepResource

__all__ = [
    "ApiKey",
    "Clinic",
    "ClinicContact",
    "CustodyCheckpoint",
    "CustodyEvent",
    "CustodyHead",
    "CustodyMaterial",
    "CustodyTimestamp",
    "DeliveryAttempt",
    "Deviation",
    "DonorEligibility",
    "DoseAtClinic",
    "DoseDisposition",
    "DoseLoggerFile",
    "DoseOrder",
    "FlowIdempotency",
    "IdSequence",
    "IdempotencyRecord",
    "Instrument",
    "LineageEdge",
    "Material",
    "Notification",
    "NotificationDelivery",
    "Patient",
    "QcResult",
    "ReagentLot",
    "Recall",
    "RecallClinic",
    "RecallItem",
    "SignInThrottle",
    "Signature",
    "SopVersion",
    "Step",
    "StepCorrection",
    "StepInput",
    "StepLoss",
    "StepResource",
    "StorageLocation",
    "User",
    "WebhookEndpoint",
    "metadata",
]
