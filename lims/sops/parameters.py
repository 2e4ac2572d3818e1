"""A stage's parameters as its SOP in the catalogue defines them, never written again by
hand: the typical values (for the demo, benchmarks and test builders) and a typed pydantic
model (for the flows' requests and their JSON schema), both derived from the
ParameterSpecs.

The model types what a person enters: quantities with the Quantity type of their kind
("3 kg" for a volume fails before anything is written), choices as a Literal, whole
numbers, yes/no and text. Parameters the LIMS computes (``derived``) are left out. The
limits stay with the SOP check (lims.sops.validation), which names the version in force.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, create_model
from pydantic_core import core_schema

from lims.errors import InvalidInput, NotFound
from lims.quantity_fields import QuantityOf
from lims.sops.catalog import CATALOG
from lims.sops.spec import TEXT_MAX_LENGTH, ParameterSpec, ParamType, SopDefinition
from lims.units import Quantity


def catalog_sop(code: str, version: int | None = None) -> SopDefinition:
    """The catalogue's definition of ``code``: the given version, or the latest."""
    found = [s for (c, v), s in CATALOG.items() if c == code and version in (None, v)]
    if not found:
        raise NotFound(f"no SOP {code!r}{f' v{version}' if version else ''} in the catalogue")
    return max(found, key=lambda s: s.version)


def typical_parameters(
    code: str, *, version: int | None = None, **overrides: Any
) -> dict[str, Any]:
    """The typical entered parameters of a stage (as JSON), with ``overrides`` applied."""
    sop = catalog_sop(code, version)
    unknown = sorted(set(overrides) - {p.name for p in sop.parameters})
    if unknown:
        raise InvalidInput(f"{', '.join(unknown)}: not a parameter of SOP {sop.code}")
    typical = {p.name: p.typical for p in sop.parameters if not p.derived and p.typical is not None}
    return {**typical, **overrides}


class StageParameters(BaseModel):
    """A stage's entered parameters: unknown fields are refused, values frozen once valid."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _annotation(spec: ParameterSpec) -> Any:
    if spec.type is ParamType.QUANTITY:
        assert spec.quantity_kind is not None
        return Annotated[Quantity, QuantityOf(spec.quantity_kind)]
    if spec.type is ParamType.CHOICE:
        assert spec.choices
        return Literal[tuple(spec.choices)]
    if spec.type is ParamType.INTEGER:
        return int
    if spec.type is ParamType.BOOLEAN:
        return bool
    return Annotated[str, Field(min_length=1, max_length=TEXT_MAX_LENGTH)]


def _range(spec: ParameterSpec) -> str:
    if spec.min is not None and spec.max is not None:
        return f"{spec.min} to {spec.max}"
    if spec.min is not None:
        return f"at least {spec.min}"
    return f"at most {spec.max}" if spec.max is not None else ""


def model_name(code: str) -> str:
    """``SVF-SEP`` -> ``SvfSepParameters``."""
    return "".join(part.capitalize() for part in code.split("-")) + "Parameters"


@cache
def parameters_model(code: str, version: int | None = None) -> type[StageParameters]:
    """The pydantic model of a stage's entered parameters, derived from its SOP."""
    sop = catalog_sop(code, version)
    fields: dict[str, Any] = {}
    for spec in sop.parameters:
        if spec.derived:
            continue
        annotation = _annotation(spec)
        described = "; ".join(part for part in (_range(spec), spec.source) if part)
        info = Field(
            ... if spec.required else None,
            title=spec.label,
            description=f"{spec.label} ({described})" if described else spec.label,
            examples=None if spec.typical is None else [spec.typical],
        )
        fields[spec.name] = (annotation if spec.required else annotation | None, info)
    model = create_model(model_name(sop.code), __base__=StageParameters, **fields)
    model.__doc__ = f"{sop.code} v{sop.version}: {sop.title} (computed parameters left out)."
    return model


@dataclass(frozen=True)
class ParametersOf:
    """Pydantic marker: ``Annotated[StageParameters, ParametersOf("SVF-SEP")]`` validates
    (and describes in JSON schema) the parameters of that stage's SOP."""

    code: str
    version: int | None = None

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return handler.generate_schema(parameters_model(self.code, self.version))
