"""What the current request is, for the records it writes (the custody event's request id).

Set by the API for each request (api/jsonlog.py) and read by the ledger's append; a
contextvar, so concurrent requests (threads, tasks) never see each other's id.
"""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("lims_request_id", default=None)
