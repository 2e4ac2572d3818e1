"""Which webhook URLs the lab will call (SSRF): https only in production, and never an
address on loopback, link-local, private, multicast or reserved ranges unless the setting
``webhook_allow_private_targets`` is on (tests, a lab's own network), which production
refuses. Checked at registration and again before every send (the name may now resolve
elsewhere)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from lims.errors import InvalidInput
from lims.settings import NotificationSettings


def _refused_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback
        or ip.is_link_local
        or ip.is_private
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def check_target(url: str, *, settings: NotificationSettings) -> str:
    """The URL, stripped, if the lab may call it; InvalidInput saying why not otherwise."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput("a webhook URL needs https:// and a host name", field="url")
    if parts.username or parts.password:
        raise InvalidInput("a webhook URL may not carry a user name or password", field="url")
    if len(url) > 500:
        raise InvalidInput("a webhook URL may have at most 500 characters", field="url")
    if settings.webhook_allow_private_targets:
        return url
    if parts.scheme != "https":
        raise InvalidInput("webhook URLs must use https", field="url")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidInput(
            f"the webhook host {parts.hostname} does not resolve", field="url"
        ) from exc
    for info in infos:
        if _refused_address(str(info[4][0])):
            raise InvalidInput(
                f"the webhook host {parts.hostname} is on a loopback, link-local or private "
                f"address ({info[4][0]}); the lab does not call those",
                field="url",
            )
    return url
