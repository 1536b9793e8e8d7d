"""The unlearning methods a job's `method` may name, straight from the engine's torch-free catalog."""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import JobsRead
from api.examples import ok
from api.problems import problem_responses
from api.schemas import MethodInfo, MethodList
from meow_engine.methods.catalog import CATALOG

router = APIRouter(prefix="/v1/methods", tags=["methods"])

_EXAMPLE = {"object": "list", "has_more": False, "data": [{
    "name": "meow", "aliases": [], "description": "NLL on MEMO-selected inverted answers", "needs_retain": False,
    "needs_reference": False, "uses_inversions": True, "parts": ["forget"], "source": "arXiv:2409.11844",
    "params": []}]}


@router.get("", response_model=MethodList, summary="List the unlearning methods, their aliases and parameters",
            responses={**ok(200, _EXAMPLE), **problem_responses(401, 403)})
def list_methods(principal: JobsRead) -> MethodList:
    """Names, open-unlearning aliases, whether retain facts or a reference model are needed, parameters."""
    return MethodList(data=[MethodInfo.model_validate(m) for m in CATALOG.describe()])
