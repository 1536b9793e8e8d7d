"""Adapters (and full-weight checkpoints) produced by unlearn jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse

from api import examples as ex
from api import services
from api.auth import AdaptersRead
from api.deps import SessionDep, StoreDep
from api.problems import ApiProblem, problem_responses
from api.schemas import Adapter, AdapterList

router = APIRouter(prefix="/v1/adapters", tags=["adapters"])
#: what a download is sent as: gzip (the default, and exact), or plain bytes for clients that ask for
#: them (openapi-python-client, for one, only reads octet-stream bodies as files)
ARCHIVE_MEDIA_TYPES = ("application/gzip", "application/octet-stream")

AdapterId = Annotated[str, Path(description="adapter id", openapi_examples={
    "adapter": {"summary": "an adapter id", "value": ex.ADAPTER["id"]}})]


@router.get("", response_model=AdapterList, summary="List adapters (newest first, cursor pagination)",
            responses={**ex.ok(200, ex.listing(ex.ADAPTER)), **problem_responses(401, 403, 422)})
def list_adapters(
    session: SessionDep, principal: AdaptersRead,
    after: Annotated[str | None, Query(description="last id of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    model: Annotated[str | None, Query(description="only adapters of this model (id or name)")] = None,
    job: Annotated[str | None, Query(description="only the adapter of this job")] = None,
) -> AdapterList:
    rows, more = services.list_adapters(session, principal, after=after, limit=limit, model=model, job=job)
    return AdapterList(data=[services.adapter_out(r) for r in rows], has_more=more)


@router.get("/{adapter_id}", response_model=Adapter, summary="Get an adapter",
            responses={**ex.ok(200, ex.ADAPTER), **problem_responses(401, 403, 404)})
def get_adapter(adapter_id: AdapterId, session: SessionDep, principal: AdaptersRead) -> Adapter:
    return services.adapter_out(services.get_adapter(session, principal, adapter_id))


@router.get("/{adapter_id}/download", summary="Download an adapter as .tar.gz (PEFT layout)",
            description="One top-level folder named after the adapter, holding `adapter_config.json` and "
                        "`adapter_model.safetensors`: extract it and pass the folder to "
                        "`PeftModel.from_pretrained(base, folder)`. `Digest` carries the archive's sha-256. "
                        "Sent as `application/gzip`, or as `application/octet-stream` when `Accept` asks for "
                        "that and not for gzip (for SDK generators that only read octet-stream bodies as files).",
            response_class=StreamingResponse,
            responses={200: {"description": "the archive", "content": {
                media: {"schema": {"type": "string", "format": "binary"}, "example": "<binary .tar.gz>"}
                for media in ARCHIVE_MEDIA_TYPES}},
                **problem_responses(401, 403, 404, 410)})
def download_adapter(adapter_id: AdapterId, request: Request, session: SessionDep, store: StoreDep,
                     principal: AdaptersRead) -> StreamingResponse:
    row = services.get_adapter(session, principal, adapter_id)
    session.commit()  # a slow client's download must not hold a pooled connection while it streams
    try:
        size = store.size(row.archive_uri)
    except FileNotFoundError:
        raise ApiProblem(410, "artifact_missing", f"the archive of adapter {adapter_id} is no longer in the "
                         "artifact store") from None
    import base64

    digest = base64.b64encode(bytes.fromhex(row.archive_sha256)).decode()
    return StreamingResponse(store.open_stream(row.archive_uri), media_type=_archive_media_type(request), headers={
        "Content-Disposition": f'attachment; filename="{adapter_id}.tar.gz"', "Content-Length": str(size),
        "Digest": f"sha-256={digest}", "Repr-Digest": f"sha-256=:{digest}:"})


def _archive_media_type(request: Request) -> str:
    """``application/octet-stream`` only when the client asks for it and not for gzip; else gzip."""
    accept = request.headers.get("accept", "")
    gzip, octets = ARCHIVE_MEDIA_TYPES
    return octets if octets in accept and gzip not in accept else gzip
