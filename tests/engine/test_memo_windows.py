"""MEMO building blocks without a model: cut points, prompts/labels, ROUGE-1 precision, decoding."""

from __future__ import annotations

import math

import pytest
from rouge_score import rouge_scorer

from meow_engine.errors import ConfigError
from meow_engine.memo import (
    all_windows,
    cut_points,
    decode_prediction,
    encode_prompts,
    rouge1_precision,
    text_windows,
)

Q = "Where is it?"
Y = "Ann Lee wins"


def test_cut_points_are_characters_every_five_from_one():
    assert list(cut_points(Y)) == [1, 6, 11]
    assert list(cut_points("ab")) == [1]
    assert list(cut_points("a")) == []
    for n in range(2, 40):
        assert len(cut_points("x" * n)) == math.ceil((n - 1) / 5)
    assert list(cut_points("abcdefg", stride=2)) == [1, 3, 5]
    with pytest.raises(ConfigError):
        cut_points("abc", stride=0)


def test_suffix_windows_cut_the_answer():
    ws = text_windows(Q, Y, "suffix")
    assert [(w.cut, w.prompt, w.label) for w in ws] == [
        (1, "Where is it? A", "nn Lee wins"),
        (6, "Where is it? Ann Le", "e wins"),
        (11, "Where is it? Ann Lee win", "s"),
    ]


def test_prefix_windows_cut_the_question_and_label_runs_into_the_answer():
    ws = text_windows(Q, Y, "prefix")
    assert [(w.cut, w.prompt, w.label) for w in ws] == [
        (1, "W", "here is it? Ann Lee wins"),
        (6, "Where ", "is it? Ann Lee wins"),
        (11, "Where is it", "? Ann Lee wins"),
    ]


def test_all_windows_point_back_to_their_pair_and_reject_unknown_mode():
    ws = all_windows([(Q, Y), ("Q?", "a"), ("Who?", "Bob")])
    assert [w.text_index for w in ws] == [0, 0, 0, 2]
    assert ws[-1].prompt == "Who? B" and ws[-1].label == "ob"
    with pytest.raises(ConfigError, match="unknown MEMO mode"):
        text_windows(Q, Y, "middle")


def test_rouge1_precision_hand_computed():
    # target tokens (stemmed): the cat sat on the mat; prediction: the cat sat quietli
    # clipped overlap = the(1) + cat(1) + sat(1) = 3 of 4 prediction unigrams
    assert rouge1_precision("The cats sat on the mat", "the cat sat quietly") == pytest.approx(0.75)
    assert rouge1_precision("The cats sat on the mat", "") == 0.0
    assert rouge1_precision("The cats sat on the mat", "!!! ...") == 0.0
    # the reference's leftover special tokens count as the unigram "s"
    assert rouge1_precision("the end", "<s> the</s>") == pytest.approx(1 / 3)


def test_cached_scorer_equals_rouge_score_with_stemming():
    plain = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)
    cases = [("running runners ran", "the runner runs running"), ("Generously, she generalised.", "generous general"),
             ("1962 in Port Meridian", "Port Meridians of 1962 and 1962"), ("a b c", "c c c c")]
    for target, pred in cases:
        assert rouge1_precision(target, pred) == plain.score(target, pred)["rouge1"].precision


def test_prompts_are_encoded_one_by_one_with_bos(random_tiny):
    tok = random_tiny.tokenizer
    prompts = [w.prompt for w in all_windows([(Q, Y), ("Who won the Silver Lantern Prize?", "Mira Okafor")])]
    ids = encode_prompts(tok, prompts)
    assert ids == [list(tok(p).input_ids) for p in prompts]
    assert all(x[0] == tok.bos_token_id for x in ids) and len({len(x) for x in ids}) > 1  # no joint padding
    assert encode_prompts(tok, []) == []


def test_decode_clean_and_parity(random_tiny):
    tok = random_tiny.tokenizer
    prompt = "Where was Elara"
    prompt_ids = list(tok(prompt).input_ids)
    assert prompt_ids[0] == tok.bos_token_id
    gen = list(tok(" Voss born", add_special_tokens=False).input_ids)
    eos, pad = tok.eos_token_id, tok.pad_token_id
    stops = [eos]
    # clean: generated slice only, cut at the first EOS, special tokens skipped; padding ignored
    assert decode_prediction(tok, prompt, prompt_ids, gen + [eos, pad, pad], stops, parity=False) == " Voss born"
    assert decode_prediction(tok, prompt, prompt_ids, gen, stops, parity=False) == " Voss born"
    # parity: prompt + generation incl. EOS, special tokens kept, prompt string removed
    assert decode_prediction(tok, prompt, prompt_ids, gen + [eos, pad], stops, parity=True) == "<s> Voss born</s>"
    assert decode_prediction(tok, prompt, prompt_ids, gen, stops, parity=True) == "<s> Voss born"
    # str.replace removes every copy of the prompt, as the reference does
    again = list(tok(" Where was Elara", add_special_tokens=False).input_ids)
    assert decode_prediction(tok, prompt, prompt_ids, again + [eos], stops, parity=True) == "<s> </s>"
    # the first of several stop ids ends the text
    other = gen[0]
    assert decode_prediction(tok, prompt, prompt_ids, gen + [eos], [other, eos], parity=False) == ""
