"""Validate a step's parameters against the SOP version in force.

Returns every problem at once (a technician fixes a form in one go), each message naming
the field, the value as typed, the limit and the SOP version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lims.errors import InvalidInput
from lims.sops.spec import TEXT_MAX_LENGTH, ParameterSpec, ParamType, SopDefinition
from lims.units import Quantity, constant_quantity, parse_quantity


@dataclass
class ParameterCheck:
    values: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failed_acceptance: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """JSON for the step record: as entered, plus canonical form for quantities."""
        out: dict[str, Any] = {}
        for name, value in self.values.items():
            if isinstance(value, Quantity):
                out[name] = {**value.as_json(), "canonical": value.canonical_str()}
            else:
                out[name] = value
        return out


def _bound(spec: ParameterSpec, text: str) -> Quantity:
    assert spec.quantity_kind is not None
    return constant_quantity(text, spec.quantity_kind)


def _parse_value(spec: ParameterSpec, raw: Any) -> Any:
    if spec.type is ParamType.QUANTITY:
        assert spec.quantity_kind is not None
        return parse_quantity(raw, spec.quantity_kind)
    if spec.type is ParamType.INTEGER:
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise InvalidInput(f"expected a whole number, got {raw!r}")
        try:
            return int(str(raw).strip())
        except ValueError:
            raise InvalidInput(f"expected a whole number, got {raw!r}") from None
    if spec.type is ParamType.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in ("yes", "true", "no", "false"):
            return raw.strip().lower() in ("yes", "true")
        raise InvalidInput(f"expected yes or no, got {raw!r}")
    if spec.type is ParamType.CHOICE:
        assert spec.choices is not None
        if raw not in spec.choices:
            raise InvalidInput(f"{raw!r} is not one of {', '.join(spec.choices)}")
        return raw
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("expected non-empty text")
    if len(raw) > TEXT_MAX_LENGTH:
        raise InvalidInput(f"text is longer than {TEXT_MAX_LENGTH} characters")
    return raw.strip()


def _compare(spec: ParameterSpec, value: Any, bound: str) -> Any:
    if spec.type is ParamType.QUANTITY:
        return _bound(spec, bound)
    return int(bound)


def _show(value: Any) -> str:
    return str(value)


def check_parameters(
    sop: SopDefinition, raw: dict[str, Any], derived: dict[str, Any]
) -> ParameterCheck:
    """Validate entered and derived parameters; collect problems, warnings, failures."""
    result = ParameterCheck()
    where = f"(SOP {sop.code} v{sop.version})"
    known = {p.name for p in sop.parameters}
    for name in sorted(set(raw) - known):
        result.problems.append(f"{name}: not a parameter of SOP {sop.code} v{sop.version}")
    for spec in sop.parameters:
        if spec.derived:
            if spec.name in raw:
                result.problems.append(
                    f"{spec.name}: computed by the LIMS from the record, do not enter it"
                )
                continue
            if spec.name not in derived:
                continue
            value = derived[spec.name]
        else:
            if spec.name not in raw or raw[spec.name] is None or raw[spec.name] == "":
                if spec.required:
                    result.problems.append(f"{spec.name}: {spec.label} is required {where}")
                continue
            try:
                value = _parse_value(spec, raw[spec.name])
            except InvalidInput as exc:
                result.problems.append(f"{spec.name}: {exc.message}")
                continue
        result.values[spec.name] = value
        if spec.type in (ParamType.QUANTITY, ParamType.INTEGER):
            if spec.min is not None and value < _compare(spec, value, spec.min):
                result.problems.append(
                    f"{spec.name}: {_show(value)} is below the minimum {spec.min} {where}"
                )
                continue
            if spec.max is not None and value > _compare(spec, value, spec.max):
                result.problems.append(
                    f"{spec.name}: {_show(value)} is above the maximum {spec.max} {where}"
                )
                continue
            if spec.accept_min is not None and value < _compare(spec, value, spec.accept_min):
                result.failed_acceptance.append(
                    f"{spec.label} {_show(value)} is below the acceptance limit "
                    f"{spec.accept_min} {where}"
                )
            if spec.accept_max is not None and value > _compare(spec, value, spec.accept_max):
                result.failed_acceptance.append(
                    f"{spec.label} {_show(value)} is above the acceptance limit "
                    f"{spec.accept_max} {where}"
                )
            if spec.warn_min is not None and value < _compare(spec, value, spec.warn_min):
                result.warnings.append(
                    f"{spec.label} {_show(value)} is below {spec.warn_min} {where}"
                )
            if spec.warn_max is not None and value > _compare(spec, value, spec.warn_max):
                result.warnings.append(
                    f"{spec.label} {_show(value)} is above {spec.warn_max} {where}"
                )
        if spec.accept_equals is not None and value != spec.accept_equals:
            result.failed_acceptance.append(
                f"{spec.label}: {_show(value)}, acceptance requires {spec.accept_equals} {where}"
            )
    return result
