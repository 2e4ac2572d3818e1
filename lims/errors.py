"""Domain errors. Each carries the HTTP status the API should answer with."""

from typing import Any


class LimsError(Exception):
    """Base of every refusal the domain makes; the message is meant for a person."""

    http_status = 400
    code = "lims_error"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class NotFound(LimsError):
    http_status = 404
    code = "not_found"


class InvalidInput(LimsError):
    """The input is malformed or out of range (wrong unit, negative amount, unknown choice)."""

    http_status = 422
    code = "invalid_input"


class RuleViolation(LimsError):
    """The input is well formed but a domain rule refuses it (state, identity, quantity)."""

    http_status = 409
    code = "rule_violation"


class IdempotencyConflict(RuleViolation):
    """An idempotency key sent again with a different request: the key was reused."""

    code = "idempotency_conflict"


class IllegalTransition(RuleViolation):
    code = "illegal_transition"


class InsufficientQuantity(RuleViolation):
    code = "insufficient_quantity"


class IdentityMismatch(RuleViolation):
    code = "identity_mismatch"


class StepRefused(RuleViolation):
    """A step record refused as a whole; ``problems`` lists every failed check."""

    code = "step_refused"

    def __init__(self, message: str, *, problems: list[str]) -> None:
        super().__init__(message + ": " + "; ".join(problems), problems=problems)
        self.problems = problems
