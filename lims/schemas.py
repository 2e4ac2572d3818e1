"""What every feature's input models share: unknown fields and NUL characters refused,
times with their zone, row ids, required text, and one way to report a model's errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from lims.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)


def _storable_time(value: datetime) -> datetime:
    try:
        value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("the time is outside years 1-9999 once in UTC") from None
    return value


def _zone_hint(value: Any, handler: ValidatorFunctionWrapHandler) -> datetime:
    try:
        return handler(value)
    except ValidationError as exc:
        if any(e.get("type") == "timezone_aware" for e in exc.errors()):
            raise PydanticCustomError(
                "timezone_aware",
                "Input should have timezone info: give the time with its zone, "
                "e.g. 2026-12-01T10:00+09:00",
            ) from None
        raise


# A time with its zone, that stays within the years the databases store once in UTC.
UtcTime = Annotated[AwareDatetime, WrapValidator(_zone_hint), AfterValidator(_storable_time)]
# Row ids fit a 32-bit INTEGER on both databases; anything larger is refused as input.
DbId = Annotated[int, Field(ge=1, le=2_147_483_647)]


def _no_nul(value: Any, path: str = "") -> None:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(f"{path or 'text'} contains a NUL character")
    if isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key, path)
            _no_nul(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for item in value:
            _no_nul(item, path)


class Strict(BaseModel):
    """Input models: unknown fields and NUL characters are refused (on every database)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul(cls, data: Any) -> Any:
        _no_nul(data)
        return data


def validated(model: type[M], **values: Any) -> M:
    """``model`` built from plain values; its first error as InvalidInput (for callers
    that hold plain values rather than a validated model, e.g. a web form)."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or None
        message = str(first.get("msg", "invalid"))
        raise InvalidInput(message.removeprefix("Value error, "), field=field) from None
