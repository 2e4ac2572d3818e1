"""Dose orders from clinics: placement, allocation, dispatch, receipt, cancellation."""
