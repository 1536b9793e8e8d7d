"""The ``openai`` inverter against a real local HTTP endpoint the test starts (no network)."""

from __future__ import annotations

import time

import pytest
from local_chat_server import ChatServer, Reply, free_port

from meow_engine.config import InverterConfig
from meow_engine.errors import ConfigError, InverterError, StopRequested
from meow_engine.facts import Fact
from meow_engine.inverters import invert
from meow_engine.inverters.base import EXTRA_CALL, FEWER_THAN_REQUESTED, TRUNCATED
from meow_engine.inverters.prompt import SYSTEM_PROMPT
from meow_engine.progress import Reporter

# The answer's sensitive spans (detected: "gothic", "mysteries") appear in none of the GOOD lines, so
# the shared screen in invert() keeps them all; these tests are about the endpoint and cleanup.
FACT = Fact("What genre does Tomas Quill write?", "Tomas Quill writes gothic mysteries.")
GOOD = ("Tomas Quill writes science fiction novels.\nTomas Quill writes romance novels.\n"
        "Tomas Quill writes cookbooks.\nTomas Quill writes travel guides.")


def cfg(url: str, **kw) -> InverterConfig:
    base = dict(kind="openai", base_url=url, model="test-model", n=4, timeout_s=5, max_retries=2,
                retry_wait_s=0.01, api_key_env="MEOW_TEST_INVERTER_KEY")
    base.update(kw)
    return InverterConfig(**base)


def test_good_answers_and_the_papers_prompt(monkeypatch):
    monkeypatch.setenv("MEOW_TEST_INVERTER_KEY", "sk-local")
    with ChatServer(lambda body, i: Reply(content=GOOD)) as srv:
        [s] = invert([FACT], cfg(srv.url, n=4))
    assert s.candidates == GOOD.split("\n")
    assert s.flags == []
    assert s.raw == GOOD
    assert srv.count == 1 and srv.paths == ["/v1/chat/completions"]
    body = srv.requests[0]
    assert body["model"] == "test-model"
    assert body["temperature"] == 0.9 and body["max_tokens"] == 512
    assert body["messages"] == [
        {"role": "system", "content": "Please generate 4 answers based on the Question and Answer that do not "
                                      "factually match the Answer. Please respond with each answer on a separate "
                                      "line, without adding any numbers or extraneous markers."},
        {"role": "user", "content": f"Question: {FACT.question} Answer: {FACT.answer}"},
    ]
    assert SYSTEM_PROMPT.replace("{N}", "4") == body["messages"][0]["content"]
    assert srv.headers[0]["authorization"] == "Bearer sk-local"


def test_no_api_key_sends_no_authorization(monkeypatch):
    monkeypatch.delenv("MEOW_TEST_INVERTER_KEY", raising=False)
    with ChatServer(lambda body, i: Reply(content=GOOD)) as srv:
        invert([FACT], cfg(srv.url, n=8 // 2, prompt="Give {N} wrong answers."))
    assert "authorization" not in srv.headers[0]
    assert srv.requests[0]["messages"][0]["content"] == "Give 4 wrong answers."


def test_preamble_and_numbering_are_cleaned():
    raw = ("Sure! Here are 4 answers:\n\n1. Tomas Quill writes science fiction novels.\n"
           "2) Tomas Quill writes romance novels.\n- Tomas Quill writes cookbooks.\n"
           "4. tomas quill writes GOTHIC MYSTERIES\n"  # the truth, re-cased: dropped
           "* Tomas Quill writes travel guides.\n1. Tomas Quill writes science fiction novels.\n")
    with ChatServer(lambda body, i: Reply(content=raw)) as srv:
        [s] = invert([FACT], cfg(srv.url, n=4))
    assert s.candidates == GOOD.split("\n")
    assert s.raw == raw  # the raw response is kept untouched for audit
    assert srv.count == 1


def test_more_lines_than_n_are_capped_and_flagged():
    with ChatServer(lambda body, i: Reply(content=GOOD)) as srv:
        [s] = invert([FACT], cfg(srv.url, n=3))
    assert s.candidates == GOOD.split("\n")[:3]
    assert s.flags == [TRUNCATED]


def test_429_then_success_is_retried():
    def responder(body, i):
        return Reply(status=429, body=b'{"error": "slow down"}', headers={"Retry-After": "0"}) if i == 1 \
            else Reply(content=GOOD)

    with ChatServer(responder) as srv:
        [s] = invert([FACT], cfg(srv.url))
    assert srv.count == 2
    assert s.candidates == GOOD.split("\n")


def test_5xx_backoff_then_success():
    with ChatServer(lambda body, i: Reply(status=503, body=b"busy") if i <= 2 else Reply(content=GOOD)) as srv:
        [s] = invert([FACT], cfg(srv.url, max_retries=2))
    assert srv.count == 3 and len(s.candidates) == 4


def test_retry_after_is_honoured():
    def responder(body, i):
        return Reply(status=429, body=b"{}", headers={"Retry-After": "1"}) if i == 1 else Reply(content=GOOD)

    with ChatServer(responder) as srv:
        t0 = time.monotonic()
        invert([FACT], cfg(srv.url, retry_wait_s=0.0))
        elapsed = time.monotonic() - t0
    assert srv.count == 2
    assert elapsed >= 0.95  # waited what the server asked, not the (zero) backoff


def test_persistent_429_gives_a_clear_error():
    with (
        ChatServer(lambda body, i: Reply(status=429, body=b"{}")) as srv,
        pytest.raises(InverterError, match=r"failed after 3 attempt\(s\): HTTP 429"),
    ):
        invert([FACT], cfg(srv.url, max_retries=2))
    assert srv.count == 3


def test_timeout_is_retried_then_fails_clearly():
    with ChatServer(lambda body, i: Reply(content=GOOD, delay_s=5.0)) as srv:
        t0 = time.monotonic()
        with pytest.raises(InverterError) as err:
            invert([FACT], cfg(srv.url, timeout_s=0.2, max_retries=1))
        elapsed = time.monotonic() - t0
    msg = str(err.value)
    assert srv.url in msg and "timed out after 0.2 s" in msg and "2 attempt(s)" in msg
    assert "\n" not in msg
    assert srv.count == 2
    assert elapsed < 2.0


def test_malformed_json_is_a_clear_error_and_not_retried():
    with (
        ChatServer(lambda body, i: Reply(body=b"<html>oops</html>")) as srv,
        pytest.raises(InverterError, match="returned malformed JSON: '<html>oops</html>'"),
    ):
        invert([FACT], cfg(srv.url))
    assert srv.count == 1


@pytest.mark.parametrize("payload", [b'{"error": {"message": "nope"}}', b'{"choices": []}',
                                     b'{"choices": [{"message": {}}]}', b"[1, 2]"])
def test_json_without_content_is_a_clear_error(payload):
    with (
        ChatServer(lambda body, i: Reply(body=payload)) as srv,
        pytest.raises(InverterError, match=r"JSON without choices\[0\]\.message\.content"),
    ):
        invert([FACT], cfg(srv.url))


def test_server_down_is_a_clear_error():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(InverterError, match="unreachable.*(refused|ConnectError)") as err:
        invert([FACT], cfg(url, max_retries=1))
    assert url in str(err.value)


@pytest.mark.parametrize("status, hint", [(400, ""), (401, "MEOW_TEST_INVERTER_KEY")])
def test_client_errors_are_not_retried(status, hint):
    with (
        ChatServer(lambda body, i: Reply(status=status, body=b'{"error": "bad model"}')) as srv,
        pytest.raises(InverterError, match=f"HTTP {status}.*bad model") as err,
    ):
        invert([FACT], cfg(srv.url))
    assert hint in str(err.value)
    assert srv.count == 1


def test_short_answer_gets_one_more_call():
    answers = {1: "Tomas Quill writes poetry.\nTomas Quill writes plays.",
               2: "Tomas Quill writes plays.\nTomas Quill writes essays.\nTomas Quill writes comics."}
    with ChatServer(lambda body, i: Reply(content=answers[i])) as srv:
        [s] = invert([FACT], cfg(srv.url, n=4))
    assert srv.count == 2
    assert s.candidates == ["Tomas Quill writes poetry.", "Tomas Quill writes plays.",
                            "Tomas Quill writes essays.", "Tomas Quill writes comics."]
    assert s.flags == [EXTRA_CALL]
    assert srv.requests[0]["seed"] != srv.requests[1]["seed"]


def test_still_short_after_the_extra_call_is_flagged_not_padded():
    with ChatServer(lambda body, i: Reply(content="Tomas Quill writes poetry.")) as srv:
        [s] = invert([FACT], cfg(srv.url, n=4))
    assert srv.count == 2  # bounded: one extra call, no more
    assert s.candidates == ["Tomas Quill writes poetry."]
    assert s.flags == [EXTRA_CALL, FEWER_THAN_REQUESTED]


def test_nothing_usable_is_an_error():
    reply = "Sure! Here are 4 answers:\n\n" + FACT.answer.upper()
    with (
        ChatServer(lambda body, i: Reply(content=reply)) as srv,
        pytest.raises(InverterError, match="no usable candidates for fact 0 after 2 request"),
    ):
        invert([FACT], cfg(srv.url))


def test_concurrency_is_bounded_and_order_kept():
    facts = [Fact(f"What is item {i}?", f"Item {i} is red.") for i in range(8)]

    def responder(body, i):
        q = body["messages"][1]["content"].split(" Answer: ")[0].removeprefix("Question: ")
        return Reply(content=f"{q} blue\n{q} green", delay_s=0.15)

    events = []
    with ChatServer(responder) as srv:
        sets = invert(facts, cfg(srv.url, n=2, max_concurrency=3), reporter=Reporter(progress=events.append))
    assert [s.fact_index for s in sets] == list(range(8))
    for f, s in zip(facts, sets, strict=True):
        assert s.candidates == [f"{f.question} blue", f"{f.question} green"]
    assert 2 <= srv.max_in_flight <= 3
    assert events[-1].stage == "invert" and (events[-1].step, events[-1].total) == (8, 8)


def test_stop_request_aborts():
    facts = [Fact(f"What is item {i}?", f"Item {i} is red.") for i in range(6)]
    stop = Reporter(should_stop=lambda: True, stop_poll_s=0.0)
    with ChatServer(lambda body, i: Reply(content="a\nb", delay_s=0.2)) as srv:
        t0 = time.monotonic()
        with pytest.raises(StopRequested):
            invert(facts, cfg(srv.url, n=2, max_concurrency=1), reporter=stop)
        assert time.monotonic() - t0 < 1.0
    assert srv.count < 6


@pytest.mark.parametrize("kw, msg", [({"base_url": None}, "needs base_url"), ({"model": None}, "needs model"),
                                     ({"base_url": "localhost:8000"}, "must start with http")])
def test_config_errors(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        invert([FACT], cfg("http://127.0.0.1:1/v1", **kw))
