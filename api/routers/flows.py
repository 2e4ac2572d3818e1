"""Start a stage's Prefect flow from the API.

With PREFECT_API_URL set (a Prefect server with the ``lims`` deployments and workers), the
flow is started through its deployment and the flow run's id comes back at once (202).
Without it, the flow runs in this process on Prefect's ephemeral engine and its result
comes back when it ends (200). The body is the flow's own typed request model, so a bad
parameter is refused (422) before anything runs or is written.
"""

from __future__ import annotations

import importlib
import os
import typing
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, JsonValue, ValidationError

from api.security import LabUser
from lims.context import request_id
from lims.errors import InvalidInput, NotFound

router = APIRouter(prefix="/lab/flows", tags=["lab"])


def _flow(name: str) -> Any:
    from flows import ENTRYPOINTS

    entrypoint = ENTRYPOINTS.get(name)
    if entrypoint is None:
        raise NotFound(f"no flow {name!r}; flows: {', '.join(sorted(ENTRYPOINTS))}", field="flow")
    path, function = entrypoint.split(":")
    module = importlib.import_module(Path(path).with_suffix("").as_posix().replace("/", "."))
    return getattr(module, function)


def _request_model(flow: Any) -> type[BaseModel] | None:
    """The flow's typed request, or None for a flow without one (the maintenance flow)."""
    model = typing.get_type_hints(flow.fn).get("request")
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


class FlowStarted(BaseModel):
    flow_run_id: str
    state: str | None


class FlowResult(BaseModel):
    result: JsonValue = Field(description="the flow's typed result (see its module)")


@router.get("", response_model=dict[str, dict[str, JsonValue] | None])
def list_flows(user: LabUser) -> dict[str, Any]:
    """The stage flows and the JSON schema of each one's request (None: takes none)."""
    from flows import ENTRYPOINTS

    schemas: dict[str, Any] = {}
    for name in ENTRYPOINTS:
        model = _request_model(_flow(name))
        schemas[name] = model.model_json_schema() if model else None
    return schemas


@router.post(
    "/{name}",
    response_model=FlowResult,
    responses={
        202: {
            "description": "started through its deployment (PREFECT_API_URL set)",
            "model": FlowStarted,
        }
    },
)
def start_flow(
    name: str, user: LabUser, body: dict[str, Any] = Body(..., examples=[{"request": {}}])
) -> JSONResponse:
    """Run a stage flow with its typed request (``{"request": {...}}``)."""
    flow = _flow(name)
    model = _request_model(flow)
    parameters: dict[str, Any] = {}
    if model is not None:
        try:
            parameters["request"] = model.model_validate(body.get("request", body))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first.get("loc", ())) or "request"
            raise InvalidInput(f"{field}: {first.get('msg')}", field=field) from None
    if os.environ.get("PREFECT_API_URL"):
        from prefect.deployments import run_deployment

        rid = request_id.get()  # the flow run is tagged with the request that started it
        run: Any = run_deployment(
            name=f"{name}/lims",
            timeout=0,
            parameters=jsonable_encoder(parameters),
            tags=[f"request-id:{rid}"] if rid else None,
        )
        return JSONResponse({"flow_run_id": str(run.id), "state": run.state_name}, status_code=202)
    # The flow reads LIMS_DATABASE_URL itself: a URL (with a password) is never passed as
    # a flow parameter, which Prefect stores and shows.
    result = flow(**parameters)
    return JSONResponse({"result": jsonable_encoder(result)}, status_code=200)
