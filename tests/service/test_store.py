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


def test_scrub_artifact_names_the_model_not_a_cache_path(tmp_path: Path):
    """A built-in model loads from a cache folder, which peft writes into the adapter's files."""
    import json

    from service.store import sha256_file
    from worker.runner import JobSpec, scrub_artifact

    cache = "/srv/meow/cache/demo-tiny-v3"
    folder = tmp_path / "adp"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": cache, "r": 8}))
    (folder / "README.md").write_text(f"---\nbase_model: {cache}\n---\nLoaded from {cache}/ on the server.\n")
    (folder / "adapter_model.safetensors").write_bytes(b"\0" * 8)
    files = {n: "stale" for n in ("adapter_config.json", "README.md", "adapter_model.safetensors")}
    spec = JobSpec(id="job_1", tenant_id="t", kind="unlearn", attempt=1, model_ref="demo:tiny", model_id="mdl_1",
                   model_name="my-demo", model_public="demo:tiny", params={}, facts=[], retain_facts=None,
                   adapter_id=None, adapter_uri=None)
    out = scrub_artifact(folder, spec, files)
    assert json.loads((folder / "adapter_config.json").read_text()) == {"base_model_name_or_path": "demo:tiny", "r": 8}
    readme = (folder / "README.md").read_text()
    assert cache not in readme and "base_model: demo:tiny" in readme

    assert out == {n: sha256_file(folder / n) for n in files}
