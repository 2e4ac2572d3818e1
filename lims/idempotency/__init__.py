"""Idempotency keys: the one digest of a request and the one replay rule, for the API's
Idempotency-Key, the flows' writes and recorded steps (lims.idempotency.service)."""
