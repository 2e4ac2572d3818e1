"""What every lab flow shares: the database, typed parameters, idempotent writes, retries
and readable names.

A flow is a thin orchestration of ``lims`` services: every rule (SOP limits, state
machines, identity, conservation, release) is checked by the service a task calls. What
lives here is plumbing:

* **Idempotency.** Each task's key is derived from the flow run's inputs (the part of the
  request that task writes, plus what earlier tasks returned, which a re-run gets back
  unchanged). A step uses ``record_step(idempotency_key=...)`` (unique ``step`` column);
  every other write goes through ``lims.idempotency.run_once`` (unique
  ``flow_idempotency.key``), in the same transaction as the write. Re-running a failed or
  killed flow with the same parameters replays what was done and continues where it stopped.
* **Retries.** Only transient database errors (busy/locked, connection lost) are retried;
  a rule refusal (``LimsError``) fails the task at once with the service's message.
* **Names.** Flow and task runs are named after the stage and the material they are about.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Annotated, Any, ParamSpec, TypeVar

from prefect import Task, get_client, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError
from sqlalchemy import Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session

from lims.db import make_engine, read_session, write_session
from lims.errors import InvalidInput, LimsError
from lims.idempotency.service import find, replay, request_digest, run_once
from lims.identity.codes import format_material_id, parse_coi_id, parse_material_id
from lims.materials.service import get_material
from lims.parties.models import User
from lims.parties.queries import get_user
from lims.quantity_fields import CellCount, Mass, QuantityOf, VialCount, Volume
from lims.settings import get_settings
from lims.units import Quantity, QuantityKind

# --- typed parameters ----------------------------------------------------------------------


def _material_id(text: str) -> str:
    try:
        return parse_material_id(text)
    except InvalidInput as exc:
        raise PydanticCustomError("material_id", exc.message) from None


def _coi_id(text: str) -> str:
    try:
        return parse_coi_id(text)
    except InvalidInput as exc:
        raise PydanticCustomError("coi_id", exc.message) from None


MaterialId = Annotated[str, AfterValidator(_material_id)]
CoiId = Annotated[str, AfterValidator(_coi_id)]
Username = Annotated[str, Field(min_length=1, max_length=64)]
Fraction = Annotated[Quantity, QuantityOf(QuantityKind.FRACTION)]
Rcf = Annotated[Quantity, QuantityOf(QuantityKind.RCF)]
Length = Annotated[Quantity, QuantityOf(QuantityKind.LENGTH)]
Area = Annotated[Quantity, QuantityOf(QuantityKind.AREA)]
Pressure = Annotated[Quantity, QuantityOf(QuantityKind.PRESSURE)]


class LabModel(BaseModel):
    """Flow parameters: unknown fields are refused, values are frozen once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ReagentLotRef(LabModel):
    reagent_type: str = Field(min_length=1, max_length=40)
    lot_number: str = Field(min_length=1, max_length=64)

    def __str__(self) -> str:
        return f"{self.reagent_type} {self.lot_number}"


class Performed(LabModel):
    """Who did a step and when (a lab record says both; a re-run must say the same)."""

    performed_by: Username
    performed_at: AwareDatetime


def sop_parameters(model: BaseModel) -> dict[str, Any]:
    """A parameters model as ``record_step`` takes it: quantities as value and unit."""
    return model.model_dump(mode="json", exclude_none=True)


# --- the database ----------------------------------------------------------------------

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def engine_for(database_url: str | None) -> Engine:
    """The engine for ``database_url`` (tests) or LIMS_DATABASE_URL, one per process."""
    if database_url and make_url(database_url).password:
        # Flow parameters are stored by the Prefect server and shown in its UI.
        raise InvalidInput(
            "database_url must not carry a password; set LIMS_DATABASE_URL on the worker",
            field="database_url",
        )
    url = database_url or get_settings().database_url
    with _engines_lock:
        if url not in _engines:
            _engines[url] = make_engine(url)
        return _engines[url]


def dispose_engines() -> None:
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def user(session: Session, username: str) -> User:
    """The user a flow acts as, by name (NotFound when there is none)."""
    return get_user(session, username=username)


# --- retries: transient database errors only -------------------------------------------------

TRANSIENT_MARKERS = (
    "database is locked",
    "database is busy",
    "database table is locked",
    "could not connect",
    "connection refused",
    "connection reset",
    "connection timed out",
    "server closed the connection",
    "terminating connection",
    "connection is closed",
    "connection already closed",
    "ssl connection has been closed",
    "consuming input failed",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "deadlock detected",
    "could not serialize access",
    "too many connections",
)


def is_transient(exc: BaseException) -> bool:
    """True for a database that is busy or unreachable for a moment; never for a refusal."""
    if isinstance(exc, LimsError):
        return False
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, PoolTimeout | DisconnectionError):
        return True
    if isinstance(exc, DBAPIError):  # OperationalError, InterfaceError, ...
        text = str(exc.orig).lower()
        return any(marker in text for marker in TRANSIENT_MARKERS)
    return False


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry a failed task only on a transient error."""
    error = state.data
    return isinstance(error, BaseException) and is_transient(error)


P = ParamSpec("P")
R = TypeVar("R")
# Back-off for a database that is busy or restarting; a refusal is never retried.
RETRY_DELAYS: list[float] = [1, 5, 15]


def lab_task(*, name: str, run_name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A task that writes to the LIMS: named for the lab, retried on transient errors only,
    never cached by Prefect (the database's idempotency keys decide what is repeated)."""

    def decorate(fn: Callable[P, R]) -> Task[P, R]:
        return task(
            name=name,
            task_run_name=run_name,
            retries=len(RETRY_DELAYS),
            retry_delay_seconds=RETRY_DELAYS,
            retry_condition_fn=retry_if_transient,
            cache_policy=NO_CACHE,
            persist_result=False,
        )(fn)

    return decorate


# --- idempotent writes -------------------------------------------------------------------


def idempotency_key(operation: str, request: Mapping[str, Any]) -> str:
    """``operation:<digest of the request>``, at most 128 characters."""
    return f"{operation[:60]}:{request_digest(operation, request)[:48]}"


def write_once(
    database_url: str | None,
    *,
    operation: str,
    request: Mapping[str, Any],
    write: Callable[[Session], Mapping[str, Any]],
) -> dict[str, Any]:
    """Run ``write`` in one transaction unless this request was done before; return its
    result (the first one on a repeat; lims.idempotency.service's replay rule)."""
    engine = engine_for(database_url)
    key = idempotency_key(operation, request)
    try:
        with write_session(engine) as session:
            return run_once(
                session, key=key, operation=operation, request=request, write=lambda: write(session)
            ).result
    except IntegrityError:
        # A concurrent run with the same key committed first: return what it did.
        with read_session(engine) as session:
            row = find(session, key)
            if row is None:
                raise
            return replay(row, request_digest(operation, dict(request))).result


# --- names -------------------------------------------------------------------------------


def label(material_id: str) -> str:
    """A material id as printed on its label."""
    return format_material_id(material_id)


def request_run_name(stage: str, field: str) -> Callable[[], str]:
    """A ``flow_run_name`` callable: "<stage> · <material id>" from the run's request."""

    def name() -> str:
        request = flow_run.parameters.get("request")
        value = request.get(field) if isinstance(request, dict) else getattr(request, field, None)
        with suppress(InvalidInput):  # not a material id: a shipment reference, an order
            value = label(parse_material_id(str(value)))
        return f"{stage} · {value}" if value else stage

    name.__name__ = f"{stage.replace(' ', '_')}_run_name"
    return name


def rename_flow_run(name: str) -> None:
    """Rename the current flow run (once the material it made has an id)."""
    if flow_run.id:
        with get_client(sync_client=True) as client:
            client.set_flow_run_name(flow_run.id, name)


def state_of(database_url: str | None, material_id: str) -> str:
    """A material's state now (read-only)."""
    with read_session(engine_for(database_url)) as session:
        return get_material(session, material_id).state


# What a step can lose: millilitres, cells, milligrams of tissue or vials.
LossQuantity = Volume | CellCount | Mass | VialCount


class Loss(LabModel):
    """An amount lost in a step, with its reason (e.g. hold-up volume in a filter)."""

    quantity: LossQuantity
    reason: str = Field(min_length=1, max_length=200)

    def of(self, material_id: str) -> tuple[str, str, str]:
        """As a step books it: from which material, how much, why."""
        return (material_id, str(self.quantity), self.reason)


def shown(value: object) -> str | None:
    """A quantity as the step record keeps it ({"value", "unit"}), printed."""
    return f"{value['value']} {value['unit']}" if isinstance(value, dict) else None
