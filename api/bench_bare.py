"""The bare FastAPI app ``meow bench service`` measures the product against: one sync route shaped
like ``GET /v1/unlearn/{id}`` (run in the same threadpool) with no database, auth or middleware, so
the ratio says what the product's own work per read costs. Not part of the product."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/v1/unlearn/{job_id}")
def get_job(job_id: str) -> dict[str, str]:
    """Echo the id: the floor a read through FastAPI and uvicorn costs here."""
    return {"id": job_id, "object": "unlearn_job", "status": "queued"}
