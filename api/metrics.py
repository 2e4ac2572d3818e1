"""The process's Prometheus metrics (prometheus-client's default registry).

Per process: with several API processes, Prometheus scrapes each and sums. What the
database knows (queues, custody appends) is read at scrape time in api/ops.py instead, so
every process reports the same, lab-wide figure.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUEST_SECONDS = Histogram(
    "lims_http_request_duration_seconds",
    "Time to answer a request, by route template (not the raw path: ids would explode it).",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
REFUSALS = Counter(
    "lims_refusals",
    "Requests answered with a problem+json, by problem type.",
    ["type", "status"],
)


def refused(problem_type: str, status: int) -> None:
    REFUSALS.labels(type=problem_type, status=str(status)).inc()
