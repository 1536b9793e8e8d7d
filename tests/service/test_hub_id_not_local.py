"""A model registered as a hub id (``zz/tiny``) must never load a same-named folder from the worker's
working directory: transformers tries a local folder first, which would bypass the model roots."""

from __future__ import annotations

import pytest

from service.settings import Settings
from worker.runner import JobSpec, _load


def _spec(ref: str, kind: str) -> JobSpec:
    return JobSpec(id="job_x", tenant_id="t", kind="unlearn", attempt=1, model_ref=ref, model_id="mdl_x",
                   model_name="impostor", model_public=ref, params={}, facts=[], retain_facts=None,
                   adapter_id=None, adapter_uri=None, model_kind=kind)


def test_hub_id_that_names_a_local_folder_is_refused(tmp_path, monkeypatch):
    from meow_engine.errors import ModelLoadError

    (tmp_path / "zz" / "tiny").mkdir(parents=True)
    (tmp_path / "zz" / "tiny" / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", data_dir=tmp_path)
    with pytest.raises(ModelLoadError, match="registered as hub id 'zz/tiny'"):
        _load(_spec("zz/tiny", "hub"), settings)
    # the same folder registered as a path source is the loader's business (it is no model: config is empty)
    with pytest.raises(ModelLoadError) as e:
        _load(_spec("zz/tiny", "path"), settings)
    assert "hub id" not in str(e.value)
