"""A flow worker process for the kill -9 test: runs one lot fill-and-lyophilisation flow
on Prefect's ephemeral server (its own PREFECT_HOME), as a worker machine would.

    python -m tests.reliability.flow_worker request.json DATABASE_URL
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    request_path, database_url = sys.argv[1], sys.argv[2]
    with open(request_path, encoding="utf-8") as handle:
        request = json.load(handle)
    from flows.lot import lot_fill_and_lyophilisation

    result = lot_fill_and_lyophilisation(request=request, database_url=database_url)
    print(json.dumps(result.model_dump(mode="json")), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
