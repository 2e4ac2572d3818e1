"""Content-Disposition for documents and exports (RFC 6266), from canonical names only.

A name that came from the request path once put a raw newline into the header (the
server dropped the connection after the label's custody event was committed) and an em
space made the header unencodable (500). Names are built here from parsed, canonical
ids; anything outside a safe ASCII set is replaced in ``filename`` and percent-encoded
in ``filename*`` (RFC 8187), so the header is always valid.
"""

from __future__ import annotations

import base64
import re
from typing import Literal
from urllib.parse import quote

from fastapi.responses import Response

from lims.doses.models import DoseLoggerFile

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def content_disposition(
    filename: str, *, disposition: Literal["inline", "attachment"] = "inline"
) -> str:
    """``inline; filename="x.pdf"; filename*=UTF-8''x.pdf`` for any ``filename``."""
    fallback = _UNSAFE.sub("_", filename) or "download"
    encoded = quote(filename, safe="") or fallback
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def logger_file_response(row: DoseLoggerFile, *, material_id: str) -> Response:
    """A kept temperature-logger file, byte for byte, with its SHA-256 as RFC 9530's
    Repr-Digest (the same digest as in the receipt's custody event, there in hex)."""
    data = row.content.encode()
    digest = base64.b64encode(bytes.fromhex(row.sha256)).decode()
    return Response(
        data,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": content_disposition(
                f"logger-{material_id}.csv", disposition="attachment"
            ),
            "Repr-Digest": f"sha-256=:{digest}:",
            "Cache-Control": "no-store",
        },
    )
