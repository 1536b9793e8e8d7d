"""The speculative MEMO engine: the same predictions and scores as the plain batched engine (and the
reference) on texts the model reproduces, on texts it does not, and on windows cut mid-word; plus
its building blocks (draft acceptance, drafting, cache squeezing) on their own."""

from __future__ import annotations

import copy

import pytest
import torch

from meow_engine.config import MemoConfig
from meow_engine.memo import all_windows, encode_prompts, memo_scores, predict_windows, rouge1_precision, stop_ids
from meow_engine.memo import batched as batched_mod
from meow_engine.memo import continuous as continuous_mod
from meow_engine.memo import speculative as spec


@pytest.fixture(scope="module")
def demo(demo_tiny, demo_tiny_facts):
    """``demo:tiny`` (it memorized its facts) with texts it reproduces and texts it does not: its own
    answers, and other facts' answers to the same questions."""
    torch.set_num_threads(1)
    facts = demo_tiny_facts
    reproduced = [(f.question, f.answer) for f in facts[:3]]
    not_reproduced = [(facts[i].question, facts[i + 5].answer) for i in range(3)]
    return demo_tiny, reproduced, not_reproduced


def _cfg(engine: str, **kw) -> MemoConfig:
    return MemoConfig(engine=engine, max_new_tokens=kw.pop("max_new_tokens", 40), **kw)


def _scores(windows, preds):
    return [rouge1_precision(w.label, p) for w, p in zip(windows, preds, strict=True)]


def _aligned(lm, windows):
    """Per window: are its prompt ids a prefix of its text's ids (else it was cut mid-token)?"""
    prompts = encode_prompts(lm.tokenizer, [w.prompt for w in windows])
    texts = encode_prompts(lm.tokenizer, [w.text for w in windows])
    return [t[: len(p)] == p for p, t in zip(prompts, texts, strict=True)]


@pytest.mark.parametrize("which", [1, 2], ids=["reproduced", "not-reproduced"])
def test_speculative_equals_plain_engines(demo, which):
    memorizer, pairs = demo[0], demo[which]
    windows = all_windows(pairs)
    spec_preds = predict_windows(memorizer, windows, _cfg("speculative"))
    plain = predict_windows(memorizer, windows, _cfg("batched"))
    ref = predict_windows(memorizer, windows, _cfg("reference"))
    assert spec_preds == plain == ref
    assert _scores(windows, spec_preds) == _scores(windows, plain)
    aligned = _aligned(memorizer, windows)
    assert any(aligned) and not all(aligned), "both token-aligned and mid-word windows must be covered"
    mid_word = [i for i, a in enumerate(aligned) if not a]
    assert [spec_preds[i] for i in mid_word] == [ref[i] for i in mid_word]


def test_reproduced_texts_are_reproduced_and_others_are_not(demo):
    """Guards the two cases above: the model really continues its facts (high scores, drafts accepted)
    and really leaves texts that are not its own (lower scores)."""
    memorizer, reproduced, not_reproduced = demo
    good = memo_scores(memorizer, reproduced, _cfg("speculative"))
    bad = memo_scores(memorizer, not_reproduced, _cfg("speculative"))
    assert min(t.memo for t in good) > 0.6
    assert sum(t.memo for t in bad) / len(bad) < 0.8 * sum(t.memo for t in good) / len(good)


def test_draft_pass_finishes_memorized_windows_without_decoding(demo):
    """On reproduced texts most token-aligned windows are complete after the one draft pass."""
    memorizer, reproduced, _ = demo
    windows = all_windows(reproduced)
    prompts = encode_prompts(memorizer.tokenizer, [w.prompt for w in windows])
    texts = encode_prompts(memorizer.tokenizer, [f"{q} {a}" for q, a in reproduced])
    text_of = [w.text_index for w in windows]
    with torch.inference_mode():
        greedy = spec.draft_pass_argmax(memorizer.model, texts, memorizer.tokenizer.pad_token_id,
                                        memorizer.device, batch_size=8)
    plans = spec.plan_windows(prompts, text_of, texts, greedy, 40, stop_ids(memorizer))
    aligned = [texts[t][: len(p)] == p for p, t in zip(prompts, text_of, strict=True)]
    done = [p.done for p, a in zip(plans, aligned, strict=True) if a]
    assert sum(done) >= 0.8 * len(done)
    assert all(not p.known and p.row == tuple(ids) for p, ids, a in zip(plans, prompts, aligned, strict=True)
               if not a)


def test_plan_windows_accepts_the_agreeing_prefix_only():
    text = [1, 10, 11, 12, 13, 14]
    # greedy[p] = token after text[:p+1]: agrees up to 12, then says 99
    greedy = [10, 11, 12, 99, 14, 2]
    prompts = [[1, 10], [1, 10, 11, 12, 13], [1, 10, 11, 12, 13, 14], [1, 77]]
    plans = spec.plan_windows(prompts, [0, 0, 0, 0], [text], [greedy], max_new_tokens=10, stops=[2])
    assert plans[0].known == [11, 12, 99] and not plans[0].done and plans[0].row == (1, 10, 11, 12, 99)
    assert plans[0].budget == 7
    assert plans[1].known == [14, 2] and plans[1].done  # the text ends, the model stops
    assert plans[2].known == [2] and plans[2].done
    assert plans[3].known == [] and plans[3].row == (1, 77) and plans[3].budget == 10  # not a prefix
    capped = spec.plan_windows(prompts[:1], [0], [text], [greedy], max_new_tokens=2, stops=[2])
    assert capped[0].known == [11, 12] and capped[0].done


def test_row_drafts_follow_the_text_rejoin_it_and_extend_loops():
    text = spec.DraftText([1, 5, 6, 7, 8, 9])
    row = spec._RowDraft(seq=[1, 5], texts=[text])
    row.src, row.j = text, 1
    row.observe(6)
    assert row.propose(3) == [7, 8, 9][:3]  # aligned: the rest of the text
    row = spec._RowDraft(seq=[1, 40], texts=[text])
    row.observe(6)
    row.observe(7)  # bigram (6, 7) re-joins the text
    assert row.propose(8) == [8, 9]
    row = spec._RowDraft(seq=[50, 51, 52, 50, 51], texts=[spec.DraftText([60, 61])])
    assert row.propose(5) == [52, 50, 51, 52, 50]  # a loop continues with its period


def test_squeeze_keeps_the_next_step_identical(demo):
    """Dropping masked slots from the cache changes no logit of the next step."""
    memorizer, reproduced, _ = demo
    prompts = encode_prompts(memorizer.tokenizer, [w.prompt for w in all_windows(reproduced[:1])][:6])
    with torch.inference_mode():
        g = continuous_mod._prefill_shared(memorizer.model, prompts, list(range(len(prompts))), [0] * len(prompts),
                                           memorizer.tokenizer.pad_token_id, memorizer.device, True)
        for _ in range(3):  # three verify steps with 2-token junk drafts that are (mostly) rejected
            spec._verify_step(memorizer.model, g, [[7, 7]] * len(prompts), 2, memorizer.tokenizer.pad_token_id)
        assert bool((g.mask == 0).any())
        squeezed = copy.deepcopy(g)
        spec._squeeze(squeezed)
        assert squeezed.mask.shape[1] < g.mask.shape[1]
        assert torch.equal(squeezed.mask.sum(1), g.mask.sum(1))
        continuous_mod._step(memorizer.model, g)
        continuous_mod._step(memorizer.model, squeezed)
    assert torch.equal(g.next, squeezed.next)


def test_small_batches_refills_and_duplicate_prompts_keep_predictions(demo):
    memorizer, reproduced, not_reproduced = demo
    pairs = [*reproduced[:2], not_reproduced[0], reproduced[0]]  # the last repeats the first: shared rows
    windows = all_windows(pairs)
    expected = predict_windows(memorizer, windows, _cfg("batched"))
    assert predict_windows(memorizer, windows, _cfg("speculative", batch_size=3)) == expected
    assert predict_windows(memorizer, windows, _cfg("speculative", parity=True)) == \
        predict_windows(memorizer, windows, _cfg("batched", parity=True))
    prefix = all_windows(pairs[:2], mode="prefix")
    assert predict_windows(memorizer, prefix, _cfg("speculative")) == predict_windows(memorizer, prefix,
                                                                                      _cfg("batched"))


def test_out_of_memory_halves_the_batch_and_keeps_results(demo, monkeypatch):
    memorizer, reproduced, not_reproduced = demo
    windows = all_windows([*reproduced, *not_reproduced])
    cfg = _cfg("speculative", batch_size=32)
    expected = predict_windows(memorizer, windows, cfg)
    real = spec._prefill_shared
    tried: list[int] = []

    def with_small_memory(model, prompts, *args, **kw):
        tried.append(len(prompts))
        if len(prompts) > 8:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")
        return real(model, prompts, *args, **kw)

    monkeypatch.setattr(spec, "_prefill_shared", with_small_memory)
    assert batched_mod.predict_windows_batched(memorizer, windows, cfg, speculative=True) == expected
    assert tried[:2] == [32, 16] and max(tried[3:]) <= 8


def test_speculative_is_the_default_engine():
    assert MemoConfig().engine == "speculative"
