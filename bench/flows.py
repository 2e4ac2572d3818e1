"""The lab pipeline through the Prefect flows, for one donation and for 20, against the same
number of no-op Prefect flow and task runs on the same Prefect, in the same run.

    .venv/bin/python -m bench.flows [--donations 20] [--backends sqlite]

Prefect runs as ``lims demo`` runs it: the ephemeral server (a private PREFECT_HOME in a
temporary directory), no flow-run heartbeats, no analytics. Each backend gets a fresh
database (bench.common.fresh_database).

One donation is the first patient's path of ``lims demo`` (flows/demo.py), every stage a
flow run: intake (with its inspection), SVF separation with nanofat, seeding, a passage,
hypoxic conditioning and CM harvest of two flasks, lot fill and lyophilisation with storage,
lot QC, then three doses ordered and allocated, two dispatched and received. QA's release
and the packers' signatures are people with passwords, done through the services, and are
not timed. The time measured is the sum of the flow runs' wall times.

The baseline: a warm-up donation's flow runs and task runs are read back from the Prefect
server, and the same shape is run as no-op flows (one integer parameter) with no-op tasks
declared like ``flows.common.lab_task`` (no cache policy, no result persistence); the
counts are checked against the server after every measured pipeline. Each side is timed
end to end: from its first run until the Prefect server has finished working off what the
runs sent it (it ingests events and states after a run returns; measured on the server's
CPU time). People's signatures inside a donation (QA release, packing; argon2) are not
flow work and are subtracted. "LIMS work" is the pipeline's time minus the no-op side's;
the target is that it adds at most 30 % to Prefect's own overhead.
"""

from __future__ import annotations

import os
import tempfile

# Prefect reads its settings when it is first imported: set them first (as tests/flows and
# lims demo do). A private home, so the ephemeral server's database is new and ours alone.
_HOME = tempfile.TemporaryDirectory(prefix="lims_bench_prefect_")
os.environ.pop("PREFECT_API_URL", None)
os.environ["PREFECT_HOME"] = _HOME.name
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402
from uuid import UUID  # noqa: E402

from prefect import flow, get_client, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId  # noqa: E402

from bench.common import fresh_database, machine  # noqa: E402
from flows.demo import ephemeral_prefect, patient_a_donation  # noqa: E402
from flows.scenario import PERSON, Scenario  # noqa: E402
from flows.scenario_requests import set_up_cast  # noqa: E402

TARGET = 0.30
RETRIES = None  # set in main(): a Retries handler on the prefect.client logger


def one_donation(sc: Scenario) -> None:
    """The first patient's donation in ``lims demo``: every stage a flow run."""
    cast = set_up_cast(sc.engine)
    patient_a_donation(sc, cast, f"BENCH-{cast.run}-1", logger=f"TL-B{cast.run}")


@task(cache_policy=NO_CACHE, persist_result=False)  # as flows.common.lab_task: no caching
def noop_task(i: int) -> int:
    return i


@flow(persist_result=False)
def noop_flow(tasks: int) -> int:
    return sum(noop_task(i) for i in range(tasks))


def prefect_runs(seen: set[UUID]) -> list[tuple[UUID, int]]:
    """Flow runs not in ``seen`` (added to it), each with its number of task runs."""
    out = []
    with get_client(sync_client=True) as client:
        runs: list[Any] = []
        while True:  # the API pages at 200
            page = client.read_flow_runs(limit=200, offset=len(runs))
            runs += page
            if len(page) < 200:
                break
        new = [r for r in runs if r.id not in seen]
        for run in new:
            seen.add(run.id)
            tasks = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])), limit=200
            )
            out.append((run.id, len(tasks)))
    return out


def _server_pid() -> int | None:
    """The ephemeral Prefect server: our child process running prefect.server."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[1]) != me:
                continue
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if b"prefect.server" in cmdline:
            return int(entry)
    return None


def _cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and all its descendants (the server may fork workers)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def inside(p: int) -> bool:
        while p > 1:
            if p == pid:
                return True
            p = parents.get(p, 0)
        return False

    return sum(t for p, t in times.items() if inside(p))


def settled(pid: int | None, *, poll: float = 0.25, quiet: float = 0.02) -> float:
    """Wait until the Prefect server stops working off what the runs sent it (events,
    states); return the time it went quiet (perf_counter)."""
    if pid is None:
        return time.perf_counter()
    deadline = time.perf_counter() + 120
    last, quiet_since = _cpu(pid), None
    while time.perf_counter() < deadline:
        mark = time.perf_counter()
        time.sleep(poll)
        now = _cpu(pid)
        if now - last <= quiet:
            if quiet_since is not None:
                return quiet_since
            quiet_since = mark
        else:
            quiet_since = None
        last = now
    return time.perf_counter()


def measure(url: str, donations: int, server: int | None) -> dict[str, Any]:
    """Each side end to end: the runs, plus the time the Prefect server then needs to work
    off what they sent it (it ingests events and states after a run returns; whichever
    side ran first would otherwise hand its backlog to the other)."""
    seen: set[UUID] = set()
    sc = Scenario(url, None)
    human = {"s": 0.0}
    for name in ("pack", "qa_release"):  # people's signatures (argon2): not flow work
        original = getattr(sc, name)

        def timed(*a: Any, _f: Any = original, **k: Any) -> Any:
            started = time.perf_counter()
            try:
                return _f(*a, **k)
            finally:
                human["s"] += time.perf_counter() - started

        setattr(sc, name, timed)
    one_donation(sc)  # warm-up, not counted; gives the shape of a donation
    shape = [n for _, n in prefect_runs(seen)]
    noop_baseline(shape)
    prefect_runs(seen)
    results: dict[str, Any] = {}
    for label, count in (("1 donation", 1), (f"{donations} donations", donations)):
        sc.out.runs.clear()
        human["s"] = 0.0
        settled(server)
        RETRIES.count = 0
        started = time.perf_counter()
        for _ in range(count):
            one_donation(sc)
        pipeline_s = settled(server) - started - human["s"]
        pipeline_retries = RETRIES.count
        flows = [r for r in sc.out.runs if r.flow != PERSON]
        assert not [r for r in flows if not r.ok]
        runs = prefect_runs(seen)
        assert len(runs) == len(flows) and sorted(n for _, n in runs) == sorted(shape * count), (
            "a donation did not run the same flows and tasks as the warm-up"
        )
        settled(server)
        RETRIES.count = 0
        started = time.perf_counter()
        noop_client_s = noop_baseline(shape * count)
        noop_s = settled(server) - started
        noop_retries = RETRIES.count
        prefect_runs(seen)
        results[label] = {
            "flow_runs": len(flows),
            "task_runs": sum(shape) * count,
            "flows_s": pipeline_s,
            "flows_client_s": sum(r.seconds for r in flows),
            "noop_s": noop_s,
            "noop_client_s": noop_client_s,
            "by_flow": Counter(r.flow for r in flows),
            "retries": (pipeline_retries, noop_retries),
        }
    return results


class Retries(logging.Handler):
    """Counts the Prefect client's retries after a 503 from its server (the ephemeral
    server on SQLite answers 503 while its database is busy; the client then sleeps ~2 s)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retryable status code" in record.getMessage():
            self.count += 1


def noop_baseline(shape: list[int]) -> float:
    started = time.perf_counter()
    for tasks in shape:
        noop_flow(tasks)
    return time.perf_counter() - started


def profile(url: str) -> str:
    """One donation under pyinstrument: the flows' time split by whose code ran it."""
    from pyinstrument import Profiler

    sc = Scenario(url, None)
    one_donation(sc)  # warm
    profiler = Profiler(interval=0.001)
    profiler.start()
    one_donation(sc)
    profiler.stop()
    totals: Counter[str] = Counter()

    def kind(path: str) -> str | None:
        path = path.replace("\\", "/")
        if "site-packages" not in path and "/lims/" in path:
            return "lims services (lims/: validation, SQL, ledger)"
        if "site-packages" not in path and "/flows/" in path:
            return "flows glue (flows/: request models, idempotency, tasks)"
        if "/prefect/" in path:
            return "Prefect (engine, API calls to its server, parameter validation)"
        return None

    def walk(frame: Any, inside: bool, current: str) -> None:
        path = frame.file_path or ""
        if frame.function == "__call__" and path.endswith("prefect/flows.py"):
            inside = True
        mine = kind(path) if inside else None
        current = mine or current
        if inside and not frame.children:
            totals[current] += frame.time
        for child in frame.children:
            walk(child, inside, current)

    session = profiler.last_session
    assert session is not None and session.root_frame() is not None
    walk(session.root_frame(), False, "other (SQLAlchemy outside lims/, httpx, ...)")
    whole = sum(totals.values())
    lines = [f"  one donation's flow runs under pyinstrument: {whole:.2f} s"]
    for name, seconds in totals.most_common():
        lines.append(f"  {seconds:6.2f} s {seconds / whole:5.0%}  {name}")
    return "\n".join(lines)


@contextmanager
def prefect_on_postgres(workdir: Path) -> Iterator[int]:
    """A real ``prefect server start`` on a fresh PostgreSQL database (the scale-out path,
    flows/scale.py), used by this process through PREFECT_API_URL; yields the server's pid.
    The server, its process group and the database are removed afterwards."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    from bench.common import pg_url
    from flows.scale import PREFECT, free_port, prefect_database, process, wait_for_api

    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(workdir / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
    )
    with prefect_database(pg_url()) as database:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database
        args = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        with process(args, env, workdir / "prefect-server.log") as server:
            wait_for_api(api_url, server)
            with temporary_settings(
                updates={PREFECT_API_URL: api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
            ):
                yield server.pid


def report(prefect: str, backend: str, results: dict[str, Any], summary: list[str]) -> None:
    for label, r in results.items():
        added = (r["flows_s"] - r["noop_s"]) / r["noop_s"]
        verdict = "met" if added <= TARGET else "MISSED"
        print(
            f"  {label}: {r['flow_runs']} flow runs, {r['task_runs']} task runs; client side: "
            f"pipeline {r['flows_client_s']:.1f} s, no-op {r['noop_client_s']:.1f} s; end to "
            f"end (until Prefect's server is idle again): pipeline {r['flows_s']:.1f} s vs "
            f"no-op {r['noop_s']:.1f} s ({1000 * r['flows_s'] / r['task_runs']:.0f} vs "
            f"{1000 * r['noop_s'] / r['task_runs']:.0f} ms per task run); client retries after "
            f"a 503: pipeline {r['retries'][0]}, no-op {r['retries'][1]}; "
            f"LIMS work adds {added:+.0%} (target <= {TARGET:.0%}): {verdict}"
        )
        summary.append(f"{prefect} Prefect, {backend} LIMS, {label}: {added:+.0%} ({verdict})")
    one = results["1 donation"]["by_flow"]
    print("  flow runs per donation: " + ", ".join(f"{k} x{v}" for k, v in one.items()))


def main(argv: list[str] | None = None) -> int:
    global RETRIES
    parser = argparse.ArgumentParser(prog="python -m bench.flows", description=__doc__)
    parser.add_argument("--donations", type=int, default=20)
    parser.add_argument("--backends", default="sqlite", help="the LIMS database(s)")
    parser.add_argument(
        "--prefect",
        default="ephemeral,postgres",
        help="ephemeral (SQLite, as lims demo) and/or postgres (prefect server start)",
    )
    parser.add_argument("--profile", choices=("auto", "yes", "no"), default="auto")
    args = parser.parse_args(argv)
    print(f"flows pipeline vs no-op Prefect runs; {machine()}")
    RETRIES = Retries()
    client_log = logging.getLogger("prefect.client")
    client_log.addHandler(RETRIES)
    client_log.setLevel(logging.DEBUG)
    client_log.propagate = False  # its DEBUG lines are for the counter, not the console
    summary: list[str] = []
    try:
        for prefect in [p.strip() for p in args.prefect.split(",") if p.strip()]:
            with tempfile.TemporaryDirectory(prefix="lims_bench_flows_") as tmp:
                if prefect == "ephemeral":
                    context: Any = ephemeral_prefect()
                else:
                    context = prefect_on_postgres(Path(tmp))
                with context as handle:
                    server = _server_pid() if prefect == "ephemeral" else int(handle)
                    print(f"\nPrefect: {prefect} server (pid {server})")
                    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
                        with fresh_database(backend) as db:
                            started = time.perf_counter()
                            results = measure(db.url, args.donations, server)
                            print(
                                f"[{prefect} Prefect, {backend} LIMS] "
                                f"({time.perf_counter() - started:.0f} s in all)"
                            )
                            report(prefect, backend, results, summary)
                            missed = "MISSED" in summary[-1]
                            if args.profile == "yes" or (args.profile == "auto" and missed):
                                print(f"  where one donation's flow time goes ({prefect}):")
                                print(profile(db.url))
    finally:
        from flows.common import dispose_engines

        dispose_engines()
    print("flows pipeline / no-op Prefect: " + "; ".join(summary) + f" (target <= {TARGET:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
