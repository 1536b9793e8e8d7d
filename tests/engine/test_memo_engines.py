"""The two MEMO engines on real tiny Llamas: identical predictions, decoding modes, robustness."""

from __future__ import annotations

import pytest
import torch

from meow_engine.config import MemoConfig
from meow_engine.errors import ConfigError, StopRequested
from meow_engine.memo import (
    all_windows,
    auto_batch_size,
    compute_memo,
    memo_scores,
    predict_windows,
    score_windows,
)
from meow_engine.memo import batched as batched_mod
from meow_engine.progress import Reporter
from tests.conftest import SAMPLE_FACTS

PAIRS = [(f.question, f.answer) for f in SAMPLE_FACTS[:2]] + [(SAMPLE_FACTS[2].question, SAMPLE_FACTS[3].answer)]


@pytest.fixture(scope="module")
def trained_tiny(random_tiny):
    """The random tiny Llama after ~1 s of SFT on the sample facts + EOS: it now continues some
    prompts with the fact, stops at EOS on some windows and loops on others, so predictions and
    scores vary (an untrained model repeats one token everywhere, which would make agreement trivial)."""
    import copy

    from meow_engine.models import LoadedModel

    torch.manual_seed(0)
    model = copy.deepcopy(random_tiny.model)
    tok = random_tiny.tokenizer
    rows = [list(tok(f"{f.question} {f.answer}").input_ids) + [tok.eos_token_id] for f in SAMPLE_FACTS]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tok.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        labels[i, : len(r)] = torch.tensor(r)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(80):
        model(input_ids=ids, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    return LoadedModel(model=model, tokenizer=tok, ref="trained-tiny", path=None, device=torch.device("cpu"),
                       prompt_format=random_tiny.prompt_format)


def _cfg(**kw) -> MemoConfig:
    return MemoConfig(max_new_tokens=kw.pop("max_new_tokens", 24), **kw)


@pytest.mark.parametrize(("mode", "parity"), [("suffix", False), ("prefix", True)])
def test_engines_give_identical_predictions_on_random_model(random_tiny, mode, parity):
    windows = all_windows(PAIRS[:2], mode)
    ref = predict_windows(random_tiny, windows, _cfg(engine="reference", mode=mode, parity=parity))
    bat = predict_windows(random_tiny, windows, _cfg(engine="batched", mode=mode, parity=parity))
    assert len(ref) == len(windows) > 10
    assert ref == bat
    if parity:
        assert all(p.startswith(random_tiny.tokenizer.bos_token) for p in ref)


def test_engines_agree_on_trained_model_with_eos_and_varied_scores(trained_tiny):
    windows = all_windows(PAIRS)
    for parity in (False, True):
        ref = predict_windows(trained_tiny, windows, _cfg(engine="reference", parity=parity, max_new_tokens=40))
        bat = predict_windows(trained_tiny, windows, _cfg(engine="batched", parity=parity, max_new_tokens=40))
        labels = [w.label for w in windows]
        from meow_engine.memo import rouge1_precision

        rs = [rouge1_precision(t, p) for t, p in zip(labels, ref, strict=True)]
        bs = [rouge1_precision(t, p) for t, p in zip(labels, bat, strict=True)]
        same = sum(a == b for a, b in zip(rs, bs, strict=True)) / len(rs)
        mad = sum(abs(a - b) for a, b in zip(rs, bs, strict=True)) / len(rs)
        assert same >= 0.995 and mad < 1e-3
        assert sum(a == b for a, b in zip(ref, bat, strict=True)) / len(ref) >= 0.995
        assert 0 < sum(s > 0 for s in rs) < len(rs), "scores should vary for agreement to mean something"
        assert len(set(ref)) > len(ref) // 2, "predictions should differ between windows"
        if parity:
            assert any(p.endswith("</s>") for p in ref), "some windows should stop at EOS"
            assert any(not p.endswith("</s>") for p in ref), "and some should run to max_new_tokens"


def test_batch_size_bucketing_and_decoder_do_not_change_predictions(trained_tiny):
    windows = all_windows(PAIRS)
    assert batched_mod.supports_continuous(trained_tiny.model)
    whole = predict_windows(trained_tiny, windows, _cfg(engine="batched", batch_size=256))
    small = predict_windows(trained_tiny, windows, _cfg(engine="batched", batch_size=3))
    with_generate = batched_mod.predict_windows_batched(trained_tiny, windows, _cfg(batch_size=7), continuous=False)
    assert whole == small == with_generate


def test_continuous_decoder_without_prefix_sharing_matches_generate(trained_tiny):
    from meow_engine.memo import continuous as continuous_mod
    from meow_engine.memo import decode_prediction, encode_prompts, stop_ids

    windows = all_windows(PAIRS)
    ids = encode_prompts(trained_tiny.tokenizer, [w.prompt for w in windows])
    got: dict[int, list[int]] = {}
    with torch.inference_mode():  # batch 4 with refills below half: rows leave and join, caches merge
        continuous_mod.continuous_greedy(trained_tiny.model, ids, max_new_tokens=24, stops=stop_ids(trained_tiny),
                                         pad_id=trained_tiny.tokenizer.pad_token_id, batch_size=4,
                                         device=trained_tiny.device, on_done=got.__setitem__)
    assert sorted(got) == list(range(len(windows)))
    preds = [decode_prediction(trained_tiny.tokenizer, w.prompt, ids[i], got[i], stop_ids(trained_tiny), False)
             for i, w in enumerate(windows)]
    assert preds == batched_mod.predict_windows_batched(trained_tiny, windows, _cfg(), continuous=False)


def test_checkpoint_generation_config_cannot_make_memo_sample(trained_tiny):
    windows = all_windows(PAIRS[:1])
    cfg = _cfg(engine="batched")
    expected = predict_windows(trained_tiny, windows, cfg)
    gc = trained_tiny.model.generation_config
    saved = gc.to_dict()
    try:
        gc.do_sample, gc.temperature, gc.top_k, gc.top_p = True, 5.0, 3, 0.5
        gc.repetition_penalty, gc.no_repeat_ngram_size = 3.0, 2
        torch.manual_seed(123)
        got = predict_windows(trained_tiny, windows, cfg)
        got_ref = predict_windows(trained_tiny, windows, cfg.model_copy(update={"engine": "reference"}))
    finally:
        for k in ("do_sample", "temperature", "top_k", "top_p", "repetition_penalty", "no_repeat_ngram_size"):
            setattr(gc, k, saved.get(k))
    assert got == expected and got_ref == expected


def test_train_mode_model_is_scored_in_eval_mode_and_restored(trained_tiny):
    windows = all_windows(PAIRS[:1])
    expected = predict_windows(trained_tiny, windows, _cfg())
    trained_tiny.model.train()
    try:
        assert predict_windows(trained_tiny, windows, _cfg()) == expected
        assert trained_tiny.model.training
    finally:
        trained_tiny.model.eval()


def test_memo_scores_and_compute_memo(trained_tiny):
    cfg = _cfg(engine="batched")
    pairs = [*PAIRS, ("Q?", "x")]
    res = memo_scores(trained_tiny, pairs, cfg)
    assert [r.n_windows for r in res] == [len(all_windows([p])) for p in pairs]
    assert res[-1].memo == 0.0 and res[-1].windows == []
    for r in res[:-1]:
        assert r.memo == pytest.approx(sum(r.windows) / len(r.windows))
        assert all(0.0 <= s <= 1.0 for s in r.windows)
    flat = score_windows(trained_tiny, all_windows(pairs), cfg)
    assert flat == [s for r in res for s in r.windows]

    facts = SAMPLE_FACTS[:3]
    result = compute_memo(trained_tiny, facts, cfg)
    assert [f.text for f in result.facts] == [f.answer for f in facts]
    assert result.mean == pytest.approx(sum(f.memo for f in result.facts) / 3)
    assert result.windows_total == sum(f.n_windows for f in result.facts)
    assert result.engine == "batched" and result.mode == "suffix"
    inverted = compute_memo(trained_tiny, facts, cfg, texts=[f.answer for f in SAMPLE_FACTS[1:4]])
    assert [f.text for f in inverted.facts] == [f.answer for f in SAMPLE_FACTS[1:4]]
    assert inverted.facts[2].windows == res[2].windows  # (Q2, A3) is PAIRS[2]
    with pytest.raises(ConfigError, match="2 texts given for 3 facts"):
        compute_memo(trained_tiny, facts, cfg, texts=["a", "b"])


def test_progress_and_cooperative_stop(random_tiny):
    events = []
    memo_scores(random_tiny, PAIRS[:1], _cfg(batch_size=4, max_new_tokens=4), Reporter(events.append))
    steps = [e.step for e in events]
    n = len(all_windows(PAIRS[:1]))
    assert all(e.stage == "memo" and e.total == n for e in events)
    assert steps == sorted(steps) and steps[-1] == n and len(steps) == -(-n // 4)
    for engine in ("batched", "reference"):
        with pytest.raises(StopRequested):
            memo_scores(random_tiny, PAIRS[:1], _cfg(engine=engine, max_new_tokens=4),
                        Reporter(should_stop=lambda: True, stop_poll_s=0.0))


@pytest.mark.parametrize("continuous", [True, False])
def test_out_of_memory_halves_the_batch_and_keeps_results(trained_tiny, monkeypatch, continuous):
    from meow_engine.memo import continuous as continuous_mod

    windows = all_windows(PAIRS)
    cfg = _cfg(batch_size=20)
    expected = predict_windows(trained_tiny, windows, cfg)
    tried: list[int] = []
    target, name = (continuous_mod, "_prefill_shared") if continuous else (batched_mod, "_generate")
    real = getattr(target, name)

    def with_small_memory(lm_or_model, prompts, *args, **kw):
        tried.append(len(prompts))
        if len(prompts) > 8:  # pretend the device only fits 8 rows
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")
        return real(lm_or_model, prompts, *args, **kw)

    monkeypatch.setattr(target, name, with_small_memory)
    events = []
    got = batched_mod.predict_windows_batched(trained_tiny, windows, cfg, Reporter(events.append),
                                              continuous=continuous)
    assert got == expected
    assert len(windows) > 20
    assert tried[:3] == [20, 10, 5] and max(tried[3:]) <= 5
    assert {e.data["batch_size"] for e in events} == {5}


def test_auto_batch_size_is_bounded(random_tiny):
    bs = auto_batch_size(random_tiny, max_prompt_len=40, max_new_tokens=200)
    assert 1 <= bs <= batched_mod.CPU_MAX_BATCH


def test_memo_scores_groups_equal_separate_calls_and_meter_counts(trained_tiny):
    from meow_engine.memo import memo_meter, memo_scores_groups

    cfg = _cfg(max_new_tokens=16)
    groups = [PAIRS[:2], [], PAIRS[2:]]
    with memo_meter() as outer:
        together = memo_scores_groups(trained_tiny, groups, cfg)
        with memo_meter() as inner:
            alone = [memo_scores(trained_tiny, g, cfg) for g in groups]
    assert [[t.windows for t in g] for g in together] == [[t.windows for t in g] for g in alone]
    n = len(all_windows(PAIRS))
    assert inner.calls == 3 and inner.windows == n
    assert outer.calls == 4 and outer.windows == 2 * n and outer.seconds >= inner.seconds > 0
