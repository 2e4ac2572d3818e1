"""The delivery worker as its own process: ``python -m lims.notifications.worker``.

A plain loop over lims.notifications.delivery.drain, separate from the API (a request's
background task would die with its API process and run in every API replica) and light
enough to run every few seconds (a Prefect flow run per delivery would add seconds of
scheduling to each). flows/notifications.py runs the same drain as a scheduled Prefect flow
for labs that prefer one scheduler. Killing it at any moment loses nothing: see delivery.py.
"""

from __future__ import annotations

import argparse
import time

from lims.db import make_engine
from lims.notifications.delivery import drain
from lims.settings import get_notification_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="deliver the notification outbox")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between rounds")
    parser.add_argument("--once", action="store_true", help="one drain, then exit")
    args = parser.parse_args(argv)
    engine = make_engine()
    settings = get_notification_settings()
    while True:
        result = drain(engine, settings=settings)
        print(f"delivered {result.delivered} failed {result.failed}", flush=True)
        if args.once:
            return
        time.sleep(args.every)


if __name__ == "__main__":
    main()
