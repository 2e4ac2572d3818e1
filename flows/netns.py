"""Hosts on one machine: Linux network namespaces on a bridge, each with its own address.

Every namespace, veth and the bridge are named with :data:`PREFIX`, so what an earlier run
left behind (a crash, a kill) is found and removed before a new run starts
(:func:`remove_stale`). Root and iproute2's ``ip`` are needed (:func:`unavailable` says why
not). The machine itself is ``<subnet>.1`` on the bridge; hosts get ``.2``, ``.3``, ...
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

PREFIX = "lh18"  # short: interface names are at most 15 characters
SUBNET = "10.201.18"  # a /24 of our own (docs/recipes.md: namespaces are our test hosts)
BRIDGE = f"{PREFIX}-br"


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=30)


def ours() -> tuple[list[str], list[str]]:
    """The namespaces and the links (in the machine's namespace) named with our prefix."""
    spaces = [line.split()[0] for line in _ip("netns", "list").stdout.splitlines() if line]
    links = [
        line.split(":")[1].strip().split("@")[0]
        for line in _ip("-o", "link", "show").stdout.splitlines()
    ]
    mine = f"{PREFIX}-"
    return [n for n in spaces if n.startswith(mine)], [n for n in links if n.startswith(mine)]


def remove_stale() -> list[str]:
    """Delete every namespace and link with our prefix; return what was removed."""
    spaces, links = ours()
    for ns in spaces:
        _ip("netns", "del", ns, check=False)
    for name in links:
        _ip("link", "del", name, check=False)
    return spaces + links


@dataclass
class Network:
    """The bridge and the hosts on it (name -> address)."""

    hosts: dict[str, str] = field(default_factory=dict)

    @property
    def gateway(self) -> str:
        return f"{SUBNET}.1"

    def add(self, name: str) -> str:
        """A new host ``name``: its namespace, a veth into the bridge, the next address."""
        ns, outside, inside = f"{PREFIX}-{name}", f"{PREFIX}-{name}-h", f"{PREFIX}-{name}-n"
        address = f"{SUBNET}.{len(self.hosts) + 2}"
        _ip("netns", "add", ns)
        self.hosts[name] = address
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", ns)
        _ip("link", "set", outside, "master", BRIDGE, "up")
        self.run(name, "ip", "addr", "add", f"{address}/24", "dev", inside)
        self.run(name, "ip", "link", "set", inside, "up")
        self.run(name, "ip", "link", "set", "lo", "up")
        return address

    def prefix(self, name: str) -> list[str]:
        """Put this before a command to run it on host ``name``."""
        return ["ip", "netns", "exec", f"{PREFIX}-{name}"]

    def run(self, name: str, *args: str) -> None:
        subprocess.run(
            [*self.prefix(name), *args], check=True, capture_output=True, text=True, timeout=60
        )

    def cut(self, name: str) -> None:
        """Take the host's link down (its cable pulled): nothing reaches it, nor leaves."""
        self.run(name, "ip", "link", "set", f"{PREFIX}-{name}-n", "down")


@contextmanager
def network() -> Iterator[Network]:
    """A fresh bridge (after removing stale ones); every namespace and link gone after."""
    remove_stale()
    _ip("link", "add", BRIDGE, "type", "bridge")
    net = Network()
    try:
        _ip("addr", "add", f"{net.gateway}/24", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
        yield net
    finally:
        for name in net.hosts:
            with suppress(subprocess.SubprocessError):
                _ip("netns", "del", f"{PREFIX}-{name}", check=False)
        remove_stale()
