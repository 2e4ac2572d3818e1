"""The orders tests that go through the HTTP API and the portal use the shared accounts."""

from tests.api.conftest import api  # noqa: F401  (the accounts fixture, shared)
