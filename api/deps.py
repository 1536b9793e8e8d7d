"""FastAPI dependencies: settings, a DB session per request, the Celery sender, the artifact store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from celery import Celery
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from service.db import session_factory
from service.purge import RETENTION_KEY
from service.settings import Settings
from service.store import LocalArtifactStore


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """Routes commit explicitly (enqueue must follow the commit); anything left is rolled back."""
    settings = request.app.state.settings
    session = session_factory(settings.db_url)()
    session.info[RETENTION_KEY] = settings.fact_retention_s  # a cancel ends a job: purge by this app's setting
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def get_celery(request: Request) -> Celery:
    return request.app.state.celery


def get_store(request: Request) -> LocalArtifactStore:
    return request.app.state.store


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_session)]
CeleryDep = Annotated[Celery, Depends(get_celery)]
StoreDep = Annotated[LocalArtifactStore, Depends(get_store)]
