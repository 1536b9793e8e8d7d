"""The local artifact store and the adapter archive layout."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from service.store import LocalArtifactStore, publish_artifact, sha256_file


def test_publish_archive_layout(tmp_path: Path):
    src = tmp_path / "out"
    (src / "sub").mkdir(parents=True)
    (src / "adapter_config.json").write_text("{}")
    (src / "adapter_model.safetensors").write_bytes(b"\0" * 100)
    (src / "sub" / "x.txt").write_text("x")
    store = LocalArtifactStore(tmp_path / "store")
    pub = publish_artifact(store, "adp_1", src)
    assert pub.dir_uri == "local://adapters/adp_1" and pub.archive_uri == "local://archives/adp_1.tar.gz"
    folder = store.fetch_dir(pub.dir_uri, tmp_path / "unused")
    assert (folder / "adapter_model.safetensors").read_bytes() == b"\0" * 100
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(b"".join(store.open_stream(pub.archive_uri)))
    assert sha256_file(archive) == pub.archive_sha256 and store.size(pub.archive_uri) == pub.archive_bytes
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["adp_1/adapter_config.json", "adp_1/adapter_model.safetensors",
                                          "adp_1/sub/x.txt"]
    store.delete(pub.dir_uri)
    store.delete(pub.archive_uri)
    assert not store.exists(pub.dir_uri) and not store.exists(pub.archive_uri)


def test_keys_cannot_escape_the_store(tmp_path: Path):
    store = LocalArtifactStore(tmp_path / "store")
    with pytest.raises(ValueError, match="escapes"):
        store.size("local://../../etc/passwd")
