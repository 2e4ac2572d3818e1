"""The signed-in test clients of tests/api, for /fhir."""

from tests.api.conftest import api

__all__ = ["api"]
