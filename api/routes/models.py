"""Registered base models: what jobs and audits run on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response, status

from api import examples as ex
from api import services
from api.auth import ModelsRead, ModelsWrite
from api.deps import SessionDep, SettingsDep
from api.idempotency import IdempotencyDep
from api.problems import not_found, problem_responses
from api.schemas import Model, ModelCreate, ModelList

router = APIRouter(prefix="/v1/models", tags=["models"])

ModelRef = Annotated[str, Path(description="model id or name", openapi_examples={
    "name": {"summary": "by name", "value": "demo:tiny"},
    "id": {"summary": "by id", "value": ex.MODEL["id"]}})]


@router.post("", status_code=201, response_model=Model, summary="Register a base model",
             responses={**ex.ok(201, ex.MODEL, "Created"), **problem_responses(401, 403, 409, 413, 422)})
def create_model(
    body: Annotated[ModelCreate, Body(openapi_examples=ex.body("builtin", "the built-in demo model",
                                                                 ex.MODEL_CREATE))],
    session: SessionDep, settings: SettingsDep, principal: ModelsWrite, idem: IdempotencyDep,
) -> Response:
    def create() -> tuple[int, Model, dict[str, str]]:
        row = services.register_model(session, principal, body.name, body.source, settings, shared=body.shared)
        return 201, services.model_out(row), {"Location": f"/v1/models/{row.id}"}

    return idem.run(principal, create)


@router.get("", response_model=ModelList, summary="List models (newest first)",
            responses={**ex.ok(200, ex.listing(ex.MODEL)), **problem_responses(401, 403, 422)})
def list_models(session: SessionDep, principal: ModelsRead,
                after: Annotated[str | None, Query(description="last id of the previous page")] = None,
                limit: Annotated[int, Query(ge=1, le=100)] = 20) -> ModelList:
    rows, more = services.list_models(session, principal, after, limit)
    return ModelList(data=[services.model_out(r) for r in rows], has_more=more)


@router.get("/{model}", response_model=Model, summary="Get a model by id or name",
            responses={**ex.ok(200, ex.MODEL), **problem_responses(401, 403, 404)})
def get_model(model: ModelRef, session: SessionDep, principal: ModelsRead) -> Model:
    row = services.find_model(session, principal, model)
    if row is None:
        raise not_found("model", model)
    return services.model_out(row)


@router.delete("/{model}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a model (refused while jobs use it)",
               responses={204: {"description": "Deleted"}, **problem_responses(401, 403, 404, 409)})
def delete_model(model: ModelRef, session: SessionDep, principal: ModelsWrite) -> Response:
    services.delete_model(session, principal, model)
    return Response(status_code=204)
