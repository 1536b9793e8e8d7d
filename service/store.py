"""Artifact store: where adapters and full weights live once a job has produced them.

Workers publish a finished artifact folder; the API streams its archive; a worker running a MEMO
audit on an adapter fetches the folder back. URIs (``local://<key>``) name objects by key, not by
absolute path, so the store root can move, and an object store (``s3://bucket/<key>``) can be added
as another ``ArtifactStore`` for multi-node workers without touching callers.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

CHUNK = 1024 * 1024


class ArtifactStore(Protocol):
    def put_dir(self, key: str, src: Path) -> str: ...
    def put_file(self, key: str, src: Path) -> str: ...
    def open_stream(self, uri: str) -> Iterator[bytes]: ...
    def size(self, uri: str) -> int: ...
    def fetch_dir(self, uri: str, dest: Path) -> Path: ...
    def delete(self, uri: str) -> None: ...


class LocalArtifactStore:
    """Artifacts under one directory (a local disk, or a volume shared by API and workers)."""

    scheme = "local://"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()  # created on first write: importing the API touches no disk

    def _path(self, uri_or_key: str) -> Path:
        key = uri_or_key.removeprefix(self.scheme)
        p = (self.root / key).resolve()
        if not p.is_relative_to(self.root):
            raise ValueError(f"artifact key escapes the store: {key!r}")
        return p

    def put_dir(self, key: str, src: Path) -> str:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp)
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)  # readers never see a half-copied folder
        return self.scheme + key

    def put_file(self, key: str, src: Path) -> str:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".partial")
        shutil.copyfile(src, tmp)
        tmp.replace(dest)
        return self.scheme + key

    def open_stream(self, uri: str) -> Iterator[bytes]:
        with self._path(uri).open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    def size(self, uri: str) -> int:
        return self._path(uri).stat().st_size

    def exists(self, uri: str) -> bool:
        return self._path(uri).exists()

    def fetch_dir(self, uri: str, dest: Path) -> Path:
        """Local store: the folder is already on disk, so hand back its path (no copy)."""
        p = self._path(uri)
        if not p.is_dir():
            raise FileNotFoundError(str(p))
        return p

    def delete(self, uri: str) -> None:
        p = self._path(uri)
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


def store_from_settings(artifact_dir: Path) -> LocalArtifactStore:
    return LocalArtifactStore(artifact_dir)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Published:
    dir_uri: str
    archive_uri: str
    archive_sha256: str
    archive_bytes: int


def publish_artifact(store: ArtifactStore, artifact_id: str, src: Path) -> Published:
    """Store a finished artifact folder and a ``.tar.gz`` of it.

    The archive holds one top-level folder named after the artifact, so ``tar xzf`` yields a
    folder ``PeftModel.from_pretrained`` (or ``from_pretrained`` for full weights) loads as is.
    """
    src = Path(src)
    dir_uri = store.put_dir(f"adapters/{artifact_id}", src)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / f"{artifact_id}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for f in sorted(src.rglob("*")):
                if f.is_file():
                    tar.add(f, arcname=f"{artifact_id}/{f.relative_to(src).as_posix()}")
        digest = sha256_file(archive)
        size = archive.stat().st_size
        archive_uri = store.put_file(f"archives/{artifact_id}.tar.gz", archive)
    return Published(dir_uri, archive_uri, digest, size)
