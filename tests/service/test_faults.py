"""Faults done for real to things this test made: a truncated model file, an adapter whose base
model folder was swapped for a model of another shape, and the database renamed away under the
API (its connections terminated). Each job ends ``failed`` with a precise code and the same worker
runs the next job; the API answers 503 problem+json while the database is gone and recovers by
itself once it is back."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import (
    _admin_conninfo,
    api_client,
    create_database,
    drop_database,
    make_settings,
    start_worker,
    wait_for,
    wait_status,
)
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.slow

DONE = {"succeeded", "failed", "crashed", "cancelled"}


@pytest.fixture(scope="module")
def stack(pg_url, tmp_path_factory, model_root, tiny_model_dir) -> Any:
    """API client + one worker on a queue of their own."""
    tmp = tmp_path_factory.mktemp("faults")
    settings = make_settings(pg_url, tmp, model_root, queue=f"meow-faults-{secrets.token_hex(4)}")
    w = start_worker(settings, tmp / "worker.log", name="faults")
    try:
        with api_client(settings) as client:
            name = f"good-{secrets.token_hex(3)}"
            assert client.post("/v1/models", json={"name": name, "source": str(tiny_model_dir)}).status_code == 201
            yield settings, client, name, w
    finally:
        w.stop()


def _copy(src: Path, root: Path, prefix: str) -> Path:
    dst = root / f"{prefix}-{secrets.token_hex(4)}"
    shutil.copytree(src, dst)
    return dst


def _memo(client, model: str | None, facts, adapter: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"facts": facts, "max_new_tokens": 8}
    if model:
        body["model"] = model
    if adapter:
        body["adapter"] = adapter
    r = client.post("/v1/memo", json=body)
    assert r.status_code == 202, r.text
    return wait_status(client, f"/v1/memo/{r.json()['id']}", DONE, 240)


def _next_job_runs(stack, facts) -> None:
    _settings, client, good, w = stack
    assert w.proc.poll() is None, w.text()[-2000:]
    job = _memo(client, good, facts)
    assert job["status"] == "succeeded", (job["error"], w.text()[-2000:])


def test_truncated_model_file_fails_with_model_load_failed(stack, model_root, tiny_model_dir, tiny_facts):
    _settings, client, _good, w = stack
    folder = _copy(tiny_model_dir, model_root, "corrupt")
    try:
        weights = folder / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        name = f"corrupt-{secrets.token_hex(3)}"
        r = client.post("/v1/models", json={"name": name, "source": str(folder)})
        assert r.status_code == 201, r.text
        job = _memo(client, name, tiny_facts[:1])
        assert job["status"] == "failed", job
        assert job["error"]["code"] == "model_load_failed", (job["error"], w.text()[-2000:])
        _next_job_runs(stack, tiny_facts[:1])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _other_shape(src: Path, dst: Path) -> None:
    """A Llama of another width in ``dst`` (random weights, ``src``'s tokenizer): what an operator
    who replaced a model folder in place would leave behind."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(src)
    config.hidden_size, config.intermediate_size = config.hidden_size * 2, config.intermediate_size * 2
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(dst, safe_serialization=True)


def test_adapter_on_a_base_of_another_shape_fails_precisely(stack, model_root, tiny_model_dir, tiny_facts):
    _settings, client, _good, w = stack
    folder = _copy(tiny_model_dir, model_root, "swapped")
    try:
        name = f"swapped-{secrets.token_hex(3)}"
        assert client.post("/v1/models", json={"name": name, "source": str(folder)}).status_code == 201
        body = {"model": name, "facts": tiny_facts[:1], "inverter": {"kind": "rule", "n": 2},
                "selection": {"k": 1, "rows_per_qa": 1}, "memo": {"max_new_tokens": 8},
                "finetune": {"mode": "lora", "max_steps": 5, "lr": 1e-3}}
        r = client.post("/v1/unlearn", json=body)
        assert r.status_code == 202, r.text
        job = wait_status(client, f"/v1/unlearn/{r.json()['id']}", DONE, 300)
        assert job["status"] == "succeeded", (job["error"], w.text()[-2000:])
        adapter = job["result"]["adapter_id"]
        (folder / "model.safetensors").unlink()
        _other_shape(tiny_model_dir, folder)
        audit = _memo(client, None, tiny_facts[:1], adapter=adapter)
        assert audit["status"] == "failed", audit
        assert audit["error"]["code"] == "adapter_incompatible", (audit["error"], w.text()[-2000:])
        _next_job_runs(stack, tiny_facts[:1])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_database_gone_under_the_api_is_503_then_recovers(tmp_path, model_root):
    from service import migrate

    url = create_database("meow_faults")
    migrate.upgrade(url)
    dbname = make_url(url).database
    admin = _admin_conninfo(url)
    settings = make_settings(url, tmp_path, model_root)
    try:
        with api_client(settings) as client:
            assert client.get("/v1/unlearn").status_code == 200
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                             (dbname,))
                conn.execute(f'ALTER DATABASE "{dbname}" RENAME TO "{dbname}_away"')
            try:
                for path in ("/v1/unlearn", "/v1/models", "/readyz"):
                    r = client.get(path)
                    assert r.status_code == 503, (path, r.status_code, r.text)
                    assert r.headers["content-type"].startswith("application/problem+json")
                    assert r.json()["code"] == "database_unavailable", r.json()
                    assert "retry-after" in r.headers
            finally:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'ALTER DATABASE "{dbname}_away" RENAME TO "{dbname}"')
            wait_for(lambda: client.get("/v1/unlearn").status_code == 200, 30, "the API to recover")
            assert client.get("/v1/models").status_code == 200
    finally:
        drop_database(url)
