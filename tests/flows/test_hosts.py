"""The scale-out topology across hosts: network namespaces on this machine, one each for
the database (its own PostgreSQL), the Prefect server, two workers and two APIs, started
from flows/topology.py as docker-compose.yml is. A worker host's link is cut mid-flow and
the run done again on the other worker; an API host is killed (SIGKILL) while a client
retries on the other with Idempotency-Keys. Slow (about 75 s): LIMS_TEST_SLOW=1; root."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from flows import netns
from flows.hosts_run import DONATIONS, ORDERS, run_hosts_check


def _leftovers() -> list[str]:
    spaces, links = netns.ours()
    return spaces + links


@pytest.mark.slow
def test_the_topology_across_hosts_survives_a_cut_link_and_a_killed_api(tmp_path: Path) -> None:
    reason = netns.unavailable()
    if reason:
        pytest.skip(reason)
    check = run_hosts_check(tmp_path)
    print("\n" + "\n".join(check.lines()))
    # Both workers ran stages; the cut one had begun its run, the other finished it.
    assert all(n >= 1 for n in check.runs_per_worker.values()), check.runs_per_worker
    assert sum(check.runs_per_worker.values()) == 2 * DONATIONS + 1
    assert check.steps_at_cut in (1, 2)
    assert check.steps == {
        "LIPO-INTAKE": DONATIONS,
        "SVF-SEP": DONATIONS,
        "NANOFAT-PREP": DONATIONS,
    }
    assert check.duplicate_steps == 0
    assert check.conservation_ok and check.chain_ok
    # The API host killed mid-burst: every order once, the retries answered by the other.
    assert check.orders_sent == check.orders_stored == ORDERS
    assert check.retries >= 1
    assert check.replays_same == check.replays_checked > 0
    # Nothing left behind: no namespace, veth or bridge with our prefix.
    assert _leftovers() == []


@pytest.mark.slow
def test_stale_namespaces_of_a_crashed_run_are_removed(tmp_path: Path) -> None:
    reason = netns.unavailable()
    if reason:
        pytest.skip(reason)
    subprocess.run(["ip", "netns", "add", f"{netns.PREFIX}-stale"], check=True)
    subprocess.run(
        [
            "ip",
            "link",
            "add",
            f"{netns.PREFIX}-st-h",
            "type",
            "veth",
            "peer",
            "name",
            f"{netns.PREFIX}-st-n",
        ],
        check=True,
    )
    try:
        with netns.network() as net:
            assert _leftovers() == [netns.BRIDGE]
            net.add("a")
    finally:
        netns.remove_stale()
    assert _leftovers() == []


def test_without_root_or_ip_it_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert netns.unavailable() == "network namespaces need root (ip netns add)"
    monkeypatch.setattr(netns.shutil, "which", lambda name: None)
    assert netns.unavailable() == "iproute2's `ip` is not installed"
