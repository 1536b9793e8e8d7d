"""Hostile-but-honest input (issue 9): every request below once got a 500, an undocumented status,
or a 202 for a job that could only fail in the worker. Each must now be a problem+json 4xx that
names the field, and no reply may echo a huge input back. Real Postgres and Redis, no worker."""

from __future__ import annotations

import json
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import api_client, problem

from api.guards import EVENT_ID_MAX, MAX_TARGET_MODULES, SEED_MAX
from api.problems import MAX_ECHO_CHARS
from service.db import get_engine, session_scope
from service.settings import Settings
from service.tables import AdapterRow, ModelRow

FACTS = [{"question": "Where was Elara Voss born?", "answer": "Elara Voss was born in Port Meridian."}]
BIG = 100_000


@pytest.fixture(scope="module")
def idle_settings(settings: Settings) -> Settings:
    """No worker consumes this queue; no reaper thread (the pool test counts connections). The database
    URL differs by an application_name so that this app gets a connection pool of its own: the other
    apps of the test session (their reapers included) draw from theirs, never from the one counted."""
    sep = "&" if "?" in settings.database_url else "?"
    return settings.model_copy(update={"queue": f"meow-stress-{secrets.token_hex(4)}", "max_wait_s": 3,
                                       "reaper_interval_s": 0,
                                       "database_url": f"{settings.database_url}{sep}application_name=meow-stress"})


@pytest.fixture(scope="module")
def tenant() -> str:
    return f"stress-{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def idle(idle_settings: Settings, tenant: str) -> Any:
    with api_client(idle_settings, tenant) as c:
        yield c


@pytest.fixture(scope="module")
def model(idle) -> dict[str, Any]:
    r = idle.post("/v1/models", json={"name": f"stress-{secrets.token_hex(3)}", "source": "demo:tiny"})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture(scope="module")
def job(idle, model) -> dict[str, Any]:
    r = idle.post("/v1/unlearn", json={"model": model["name"], "facts": FACTS})
    assert r.status_code == 202, r.text
    return r.json()


@pytest.fixture(scope="module")
def sqlite_client(tmp_path_factory: pytest.TempPathFactory, model_root: Path) -> Any:
    """The embedded backend: SQLite, auth off (what ``meow serve`` runs locally)."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from service import migrate

    s = Settings(data_dir=tmp_path_factory.mktemp("stress-sqlite"), auth="off", model_roots=[model_root],
                 reaper_interval_s=0)
    migrate.upgrade(s.db_url)
    with TestClient(create_app(s)) as c:
        yield c


def _loc(body: dict[str, Any]) -> list[str]:
    return [e["loc"] for e in body["errors"] or []]


# ---------------------------------------------------------------- NUL and 64-bit ids
@pytest.mark.parametrize(("url", "loc"), [
    ("/v1/unlearn/job_%00x", "path/job_id"),
    ("/v1/memo/aud_%00x/events", "path/audit_id"),
    ("/v1/models/%00", "path/model"),
    ("/v1/unlearn?after=%00", "query/after"),
    ("/v1/unlearn?model=%00", "query/model"),
    ("/v1/memo?model=ok&model=x%00", "query/model"),
])
def test_nul_in_path_or_query_is_422(idle, url, loc):
    assert _loc(problem(idle.get(url), 422, "validation_error")) == [loc]


def test_event_ids_beyond_64_bits(idle, job):
    url = f"/v1/unlearn/{job['id']}/events"
    body = problem(idle.get(url, params={"after": 10**23}), 422, "validation_error")
    assert _loc(body) == ["query/after"]
    problem(idle.get(url, params={"after": -1}), 422, "validation_error")
    edge = idle.get(url, params={"after": EVENT_ID_MAX})  # the largest id is a valid (empty) cursor
    assert edge.status_code == 200 and edge.json()["data"] == []
    for bad in (str(10**23), "12abc", "-3"):
        r = idle.get(url, headers={"Accept": "text/event-stream", "Last-Event-ID": bad})
        assert _loc(problem(r, 422, "validation_error")) == ["header/last-event-id"], bad


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
@pytest.mark.parametrize("source", ["/a\x00b", "demo:tiny\x00", "org/na\x00me"])
def test_nul_in_model_source_is_422(request, backend, source):
    client = request.getfixturevalue("idle" if backend == "postgres" else "sqlite_client")
    body = problem(client.post("/v1/models", json={"name": f"n-{secrets.token_hex(3)}", "source": source}),
                   422, "validation_error")
    assert "source" in body["detail"] and "NUL" in body["detail"]


@pytest.mark.parametrize("url", ["http://[::1", "http://example.com:99999/v1", "http://example.com:abc/v1"])
def test_broken_inverter_urls_are_422(idle, model, url):
    """urlsplit / .port raise ValueError on these: they were 500s."""
    r = idle.post("/v1/unlearn", json={"model": model["name"], "facts": FACTS,
                                       "inverter": {"kind": "openai", "base_url": url, "api_key": "sk-own"}})
    body = problem(r, 422, "validation_error")
    assert _loc(body) == ["body/inverter/base_url"] and "not a valid URL" in body["detail"]


def test_odd_model_paths_are_422(idle, model_root):
    """Paths the OS refuses (a name too long, a file used as a folder, ~ of no such user) were 500s."""
    scratch = model_root / f".stress-{secrets.token_hex(3)}"
    scratch.mkdir()
    try:
        (scratch / "file").write_text("x")
        cases = {"~zzq-no-such-user/m": "path_outside_roots", "/" + "a" * 300: "path_outside_roots",
                 str(scratch / ("a" * 300)): "path_not_found", str(scratch / "file" / "m"): "path_not_found"}
        for source, kind in cases.items():
            body = problem(idle.post("/v1/models", json={"name": f"o-{secrets.token_hex(3)}", "source": source}),
                           422, "validation_error")
            assert body["errors"][0]["type"] == kind, (source, body)
    finally:
        (scratch / "file").unlink()
        scratch.rmdir()


@pytest.mark.parametrize(("extra", "needle"), [
    ({"facts": [{"question": "Who is\x00 she?", "answer": "Nobody."}]}, "facts/0/question"),
    ({"metadata": {"ticket": "a\x00"}}, "metadata/ticket"),
    ({"metadata": {"k\x00": "v"}}, "a key in metadata"),
    ({"inverter": {"kind": "given", "candidates": [["x", "y\x00", "z"]]}}, "inverter/candidates/0/1"),
])
def test_nul_anywhere_in_a_body_is_422(idle, model, extra, needle):
    r = idle.post("/v1/unlearn", json={"model": model["name"], "facts": FACTS, **extra})
    assert needle in problem(r, 422, "validation_error")["detail"]


def test_lone_surrogate_in_a_body_is_422(idle, model):
    raw = json.dumps({"model": model["name"], "facts": FACTS, "metadata": {"k": "PLACEHOLDER"}})
    r = idle.post("/v1/unlearn", content=raw.replace("PLACEHOLDER", "\\ud800").encode(),
                  headers={"Content-Type": "application/json"})
    assert "surrogate" in problem(r, 422, "validation_error")["detail"]


def test_body_not_utf8_or_not_json(idle):
    bad = idle.post("/v1/models", content=b'{"name": "x\xff", "source": "demo:tiny"}',
                    headers={"Content-Type": "application/json"})
    assert problem(bad, 422, "validation_error")["errors"][0]["type"] == "json_invalid"
    ok = b'{"name": "x", "source": "demo:tiny"}'
    for ctype in ("", "text/plain"):
        body = problem(idle.post("/v1/models", content=ok, headers={"Content-Type": ctype}), 415,
                       "unsupported_media_type")
        assert "application/json" in body["detail"]


def test_header_nul_is_422(idle):
    r = idle.post("/v1/models", json={"name": f"h-{secrets.token_hex(3)}", "source": "demo:tiny"},
                  headers={"Idempotency-Key": "a\x00b"})
    assert _loc(problem(r, 422, "validation_error")) == ["header/idempotency-key"]


def _raw(client: Any, model: dict[str, Any], tail: str) -> Any:
    """POST /v1/unlearn with ``tail`` spliced raw into the JSON (for what json.dumps cannot write)."""
    head = json.dumps({"model": model["name"], "facts": FACTS, "retain_facts": FACTS})[:-1]
    return client.post("/v1/unlearn", content=(head + tail).encode(), headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(("tail", "needle"), [
    (', "method": "gd", "method_params": {"forget_coeff": Infinity}}', "not a finite number"),
    (', "inverter": {"temperature": NaN}}', "not a finite number"),
    (', "method": "rmu", "method_params": {"layer": ' + "1" + "0" * 22 + "}}", "beyond 64 bits"),
    (', "inverter": {"n": ' + "9" * 5000 + "}}", "does not parse as JSON"),
    (', "method_params": {"a": ' + "[" * 900 + "]" * 900 + "}}", "method_params"),  # parses; guards stay flat
])
def test_numbers_and_nesting_json_cannot_hold(idle, model, tail, needle):
    assert needle in problem(_raw(idle, model, tail), 422, "validation_error")["detail"]


def test_body_nested_beyond_the_parser_is_422(idle):
    r = idle.post("/v1/models", content=b"[" * 100_000 + b"]" * 100_000, headers={"Content-Type": "application/json"})
    assert "nested too deeply" in problem(r, 422, "validation_error")["detail"]


# ---------------------------------------------------------------- checks the worker used to make
@pytest.mark.parametrize(("extra", "loc", "needle"), [
    ({"inverter": {"seed": 2**64}}, "body/inverter/seed", "2^63-1"),
    ({"selection": {"seed": -1}}, "body/selection", "seed must be"),
    ({"finetune": {"seed": 10**20}}, "body/finetune", "seed must be"),
    ({"leak_audit": {"seed": SEED_MAX + 1}}, "body/leak_audit", "seed must be"),
    ({"method": "rmu", "retain_facts": FACTS, "method_params": {"seed": 2**70}}, "body/method_params", "seed"),
    ({"method": "gd"}, "body", "retain_facts"),
    ({"inverter": {"n": 2}, "selection": {"k": 3}}, "body", "inverter.n (2) must be at least selection.k (3)"),
    ({"inverter": {"kind": "given", "candidates": [["only one"]]}, "selection": {"k": 2, "rows_per_qa": 2}},
     "body", "fewer than selection.k"),
    ({"finetune": {"target_modules": ["q_proj", "not a name"]}}, "body/finetune", "not a module name"),
    ({"finetune": {"target_modules": []}}, "body/finetune", "target_modules"),
    ({"finetune": {"target_modules": [f"m{i}" for i in range(MAX_TARGET_MODULES + 1)]}}, "body/finetune",
     f"1 to {MAX_TARGET_MODULES}"),
    ({"finetune": {"max_steps": 10**12}}, "body/finetune/max_steps", "100000"),
])
def test_worker_only_checks_are_422(idle, model, extra, loc, needle):
    body = problem(idle.post("/v1/unlearn", json={"model": model["name"], "facts": FACTS, **extra}), 422,
                   "validation_error")
    assert loc in _loc(body) and needle in body["detail"], body


def test_valid_neighbours_still_accepted(idle, model):
    """The new checks reject only what cannot run: their edges are accepted."""
    for extra in ({"inverter": {"seed": SEED_MAX}, "finetune": {"seed": 0, "max_steps": 100_000,
                                                               "target_modules": ["self_attn.q_proj", "v_proj"]}},
                  {"method": "gd", "retain_facts": FACTS},
                  {"method": "ga", "inverter": {"n": 1}}):  # no inversions: n < k does not matter
        r = idle.post("/v1/unlearn", json={"model": model["name"], "facts": FACTS, **extra})
        assert r.status_code == 202, r.text
        idle.post(f"/v1/unlearn/{r.json()['id']}/cancel")


# ---------------------------------------------------------------- caps, and no huge echoes
@pytest.mark.parametrize(("extra", "loc"), [
    ({"inverter": {"prompt": "p" * BIG}}, "body/inverter/prompt"),
    ({"inverter": {"base_url": "https://x.example/" + "a" * BIG}}, "body/inverter/base_url"),
    ({"inverter": {"kind": "k" * BIG}}, "body/inverter/kind"),
    ({"inverter": {"model": "m" * BIG}}, "body/inverter/model"),
    ({"inverter": {"kind": "given", "candidates": [["c" * BIG, "d", "e"]]}}, "body/inverter/candidates"),
    ({"inverter": {"kind": "given", "candidates": [[f"c{i}" for i in range(33)]]}}, "body/inverter/candidates"),
    ({"finetune": {"target_modules": ["m" * BIG]}}, "body/finetune"),
    ({"method_params": {"x" * BIG: 1}}, "body/method_params"),
    ({"leak_audit": {"extraction_prefixes": ["s" * BIG]}}, "body/leak_audit"),
    ({"model": "m" * BIG}, "body/model"),
])
def test_every_field_is_capped_and_not_echoed(idle, model, extra, loc):
    r = idle.post("/v1/unlearn", json={"model": model["name"], "facts": FACTS, **extra})
    body = problem(r, 422, "validation_error")
    assert loc in _loc(body), body
    assert len(r.content) < 10 * MAX_ECHO_CHARS, len(r.content)


def test_many_errors_are_listed_briefly(idle, model):
    r = idle.post("/v1/unlearn", json={"model": model["name"], "facts": [{"question": ""}] * 2000})
    body = problem(r, 422, "validation_error")
    assert len(body["errors"]) == 50 and "more)" in body["detail"]


# ---------------------------------------------------------------- ?wait= holds no connection
def test_memo_wait_holds_no_db_connection(idle, idle_settings, model):
    """A waiting request must not keep a pooled connection (45 waits used to exhaust the pool)."""
    pool = get_engine(idle_settings.db_url).pool
    done: dict[str, Any] = {}

    def wait() -> None:
        done["r"] = idle.post("/v1/memo", params={"wait": 3}, json={"model": model["name"], "facts": FACTS})

    t = threading.Thread(target=wait)
    t.start()
    try:
        seen = []
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline and t.is_alive():
            seen.append(pool.checkedout())
            time.sleep(0.05)
    finally:
        t.join(30)
    assert done["r"].status_code == 202, done["r"].text  # no worker: still queued after the wait
    mid = seen[10:]  # after the submission; each poll borrows a connection for a few ms only
    assert len(mid) > 20 and mid.count(0) > 0.6 * len(mid), seen
    idle.post(f"/v1/memo/{done['r'].json()['id']}/cancel")


def test_memo_waits_are_bounded(idle, model):
    """Beyond WAIT_SLOTS waiting requests a ?wait= answers 202 at once: waits cannot take every
    worker thread (45 concurrent waits used to stall every other route, /healthz included)."""
    from api.routes.memo import WAIT_SLOTS

    took: list[tuple[int, float]] = []

    def wait() -> None:
        t0 = time.monotonic()
        r = idle.post("/v1/memo", params={"wait": 2}, json={"model": model["name"], "facts": FACTS})
        took.append((r.status_code, time.monotonic() - t0))

    threads = [threading.Thread(target=wait) for _ in range(WAIT_SLOTS + 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(took) == WAIT_SLOTS + 3 and {c for c, _ in took} == {202}, took
    quick = sorted(d for _, d in took)[:3]
    assert max(quick) < 1.5, took  # the requests beyond the slots did not wait
    assert sum(d >= 1.9 for _, d in took) >= WAIT_SLOTS - 1, took  # the slots did wait


def _checked_out_while(pool: Any, lines: Any, n: int = 20) -> list[int]:
    next(lines)  # the response has started: the route has returned
    seen = []
    for _ in range(n):
        seen.append(pool.checkedout())
        time.sleep(0.05)
    return seen


def test_event_stream_holds_no_db_connection(idle, idle_settings, job):
    """An open SSE stream polls with short sessions; the request's own (the key look-up) is ended."""
    pool = get_engine(idle_settings.db_url).pool
    with idle.stream("GET", f"/v1/unlearn/{job['id']}/events", headers={"Accept": "text/event-stream"}) as r:
        seen = _checked_out_while(pool, r.iter_lines())
    assert seen.count(0) > 0.6 * len(seen), seen


def test_adapter_download_holds_no_db_connection(idle, idle_settings, tenant, tmp_path):
    """A slow client's download streams with no pooled connection held."""
    from service.store import store_from_settings

    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(secrets.token_bytes(4 << 20))
    adapter_id = f"adp_{secrets.token_hex(14)}"
    uri = store_from_settings(idle_settings.artifacts).put_file(f"adapters/{adapter_id}.tar.gz", archive)
    with session_scope(idle_settings.db_url) as s:
        s.add(AdapterRow(id=adapter_id, tenant_id=tenant, kind="lora", model_name="m", base_model="demo:tiny",
                         method="meow", files={}, size_bytes=archive.stat().st_size, storage_uri=uri,
                         archive_uri=uri, archive_sha256="0" * 64))
    pool = get_engine(idle_settings.db_url).pool
    with idle.stream("GET", f"/v1/adapters/{adapter_id}/download") as r:
        assert r.status_code == 200
        seen = _checked_out_while(pool, r.iter_bytes(1024))
    assert seen == [0] * len(seen), seen


def test_concurrent_registrations_of_one_name(idle):
    """Racing registrations of a name: one 201, the rest 409 (the loser's unique-key violation was a 500)."""
    for _ in range(3):
        name = f"race-{secrets.token_hex(3)}"
        codes: list[int] = []

        def register(name: str = name, codes: list[int] = codes) -> None:
            codes.append(idle.post("/v1/models", json={"name": name, "source": "demo:tiny"}).status_code)

        threads = [threading.Thread(target=register) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(codes) == [201] + [409] * 7, codes


def test_delete_racing_job_creation(idle):
    """Deleting a model while jobs on it are submitted: each job is accepted (and the delete then
    refused, 409) or refused (422); none is a 500 (a foreign-key violation) and none loses its model."""
    for _ in range(10):
        name = f"del-{secrets.token_hex(3)}"
        assert idle.post("/v1/models", json={"name": name, "source": "demo:tiny"}).status_code == 201
        out: list[tuple[str, Any]] = []

        def submit(name: str = name, out: list[tuple[str, Any]] = out) -> None:
            out.append(("job", idle.post("/v1/unlearn", json={"model": name, "facts": FACTS})))

        def delete(name: str = name, out: list[tuple[str, Any]] = out) -> None:
            out.append(("delete", idle.delete(f"/v1/models/{name}")))

        threads = [threading.Thread(target=submit) for _ in range(3)] + [threading.Thread(target=delete)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(out) == 4, out
        codes = {what: sorted(r.status_code for w, r in out if w == what) for what in ("job", "delete")}
        assert set(codes["job"]) <= {202, 422} and codes["delete"] in ([204], [409]), codes
        accepted = [r.json() for w, r in out if w == "job" and r.status_code == 202]
        assert all(j["model_id"] is not None and idle.get(f"/v1/unlearn/{j['id']}").json()["model_id"] == j["model_id"]
                   for j in accepted), accepted
        if codes["delete"] == [204]:
            assert accepted == [], codes  # a job accepted before the delete makes the delete a 409
        for j in accepted:
            idle.post(f"/v1/unlearn/{j['id']}/cancel")


# ---------------------------------------------------------------- names never shadow ids
def test_model_names_cannot_look_like_ids(idle, model):
    for name in (model["id"], "mdl_mine", "MDL_x"):
        r = idle.post("/v1/models", json={"name": name, "source": "demo:tiny"})
        assert "reserved for model ids" in problem(r, 422, "validation_error")["detail"]


def test_an_id_resolves_before_a_name(idle, idle_settings, tenant, model):
    """A row registered before names were checked, named like another model's id, does not shadow it."""
    with session_scope(idle_settings.db_url) as s:
        # an older id than the real model's, so that "first by id" would pick it
        s.add(ModelRow(id=f"mdl_{0:012x}{secrets.token_hex(8)}", tenant_id=tenant, shared=False, name=model["id"],
                       source="demo:tiny", source_kind="builtin"))
    assert idle.get(f"/v1/models/{model['id']}").json()["id"] == model["id"]
    r = idle.post("/v1/unlearn", json={"model": model["id"], "facts": FACTS})
    assert r.status_code == 202 and r.json()["model_id"] == model["id"], r.text
    idle.post(f"/v1/unlearn/{r.json()['id']}/cancel")
