"""HL7 FHIR R4 under /fhir: a sub-application over lims.fhir (mounted by api/app.py)."""

from api.fhir.app import fhir_app

__all__ = ["fhir_app"]
