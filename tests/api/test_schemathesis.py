"""Property-based requests from the OpenAPI schema: whatever is sent, never a 5xx.

schemathesis' pytest loader does not work with pytest 9 here, so its per-operation
hypothesis strategies are driven directly; every operation gets the same budget.
"""

from collections import Counter

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.api.conftest import Api

ROLE_FOR_PREFIX = {
    "/api/v1/clinic/": "clinic",
    "/api/v1/lab/": "technician",
    "/api/v1/qa/": "qa",
    "/api/v1/audit/": "auditor",
    "/api/v1/admin/": "admin",
    "/api/v1/auth/": "admin",
}
EXAMPLES_PER_OPERATION = 6


CONFORMANCE = [
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def test_no_server_errors_anywhere(api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    statuses: Counter[int] = Counter()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        operations += 1
        role = next(
            (r for p, r in ROLE_FOR_PREFIX.items() if operation.path.startswith(p)), "admin"
        )
        auth = api.as_(role)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: schemathesis.Case) -> None:
            # Generated credentials would only test sign-in; replace them with a real one.
            headers = {
                k: v
                for k, v in (case.headers or {}).items()
                if k.lower() not in ("authorization", "x-api-key")
            }
            headers.update(auth)  # noqa: B023  (used within this iteration only)
            case.headers = headers  # type: ignore[assignment]  # case.call merges the case's own headers last
            response = case.call()
            statuses[response.status_code] += 1
            assert response.status_code < 500, (case.method, case.path, response.text)
            # Every answer matches the schema: status code documented, content type and
            # body as declared (a violation raises with schemathesis' own report).
            case.validate_response(response, checks=CONFORMANCE)
            if response.status_code >= 400:
                content_type = response.headers["content-type"]
                first = content_type[0] if isinstance(content_type, list) else content_type
                assert first.startswith("application/problem+json"), (case.path, first)

        call()
    assert operations >= 35
    print(
        f"\nschemathesis: {operations} operations, {sum(statuses.values())} requests, "
        f"statuses {dict(sorted(statuses.items()))}, 0 server errors, 0 schema violations"
    )
