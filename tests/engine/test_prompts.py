"""Prompt formats and question-masked labels: the unmasked span is exactly the learned part
(TOFU's ``Answer: `` tag + the answer in the ``tofu`` format, the answer otherwise) plus EOS.

The tokenizers are real byte-level BPE tokenizers trained in-process (one of them given a ChatML
chat template); TOFU's exact construction is checked against TOFU's own algorithm and logs in test_prompts_tofu.py.
"""

from __future__ import annotations

import copy

import pytest

from meow_engine.errors import ConfigError
from meow_engine.prompts import IGNORE_INDEX, collate, encode_example, encode_prompt, resolve_format
from meow_engine.tiny.fictitious import fictitious_facts
from meow_engine.tiny.tokenizer import train_tokenizer

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
FACTS = fictitious_facts(12, seed=3)
QA = [(f.question, f.answer) for f in FACTS] + [
    ("Who?", "Nobody."),
    ("Is it  spaced ?", " Leading space and trailing. "),
    ("Number?", "1962"),
]


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer([f"Question: {q}\nAnswer: {a}" for q, a in QA], vocab_size=600)


@pytest.fixture(scope="module")
def chat_tok():
    t = train_tokenizer([f"Question: {q}\nAnswer: {a}" for q, a in QA], vocab_size=600)
    t.chat_template = CHATML
    return t


def assert_mask_exact(tokenizer, fmt_name: str, question: str, answer: str) -> None:
    fmt = resolve_format(tokenizer, fmt_name)
    ex = encode_example(tokenizer, fmt, question, answer)
    prompt = encode_prompt(tokenizer, fmt, question)
    assert ex.input_ids[: ex.prompt_len] == prompt, "the prompt is the first prompt_len tokens"
    assert all(x == IGNORE_INDEX for x in ex.labels[: ex.prompt_len])
    assert ex.labels[ex.prompt_len :] == ex.input_ids[ex.prompt_len :], "everything after the prompt is learned"
    assert ex.input_ids[-1] == tokenizer.eos_token_id
    learned = tokenizer.decode(ex.input_ids[ex.prompt_len :], skip_special_tokens=False)
    assert learned == fmt.answer_text(answer) + tokenizer.eos_token
    assert tokenizer.decode(prompt, skip_special_tokens=False).endswith(fmt.prompt_text(tokenizer, question))


@pytest.mark.parametrize("fmt_name", ["tofu", "llama2"])
def test_plain_formats_mask_exactly_the_prompt(tok, fmt_name: str) -> None:
    for q, a in QA:
        assert_mask_exact(tok, fmt_name, q, a)


def test_chat_format_masks_exactly_the_prompt(chat_tok) -> None:
    for q, a in QA:
        assert_mask_exact(chat_tok, "chat", q, a)
    prompt = encode_prompt(chat_tok, resolve_format(chat_tok, "chat"), "Hi?")
    assert chat_tok.decode(prompt) == "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n"
    assert prompt[0] != chat_tok.bos_token_id, "the template writes its own specials; no extra BOS"


def test_bos_is_counted_in_the_prompt(tok) -> None:
    fmt = resolve_format(tok, "tofu")
    ex = encode_example(tok, fmt, "Who?", "Nobody.")
    assert ex.input_ids[0] == tok.bos_token_id
    assert tok.decode(ex.input_ids[: ex.prompt_len]) == "<s>Question: Who?\n"
    assert tok.decode(ex.input_ids[ex.prompt_len :]) == "Answer: Nobody.</s>"


def test_chat_boundary_merge_falls_back_to_concatenation(chat_tok) -> None:
    """A template whose generation prompt ends in a space the tokenizer merges into the answer's first
    word: masking by the prompt's token count on the joint tokenization would shift the mask by one,
    so the chat format concatenates prompt ids and answer ids instead."""
    t = copy.deepcopy(chat_tok)
    t.chat_template = CHATML.replace("'<|im_start|>assistant\n'", "'<|im_start|>assistant: '")
    fmt = resolve_format(t, "chat")
    q, a = QA[0]
    joint = t(fmt.full_text(t, q, a), add_special_tokens=False).input_ids
    prompt = encode_prompt(t, fmt, q)
    assert joint[: len(prompt)] != prompt  # the pitfall is real for this template
    assert_mask_exact(t, "chat", q, a)  # and the encoder avoids it


def test_resolve_format(tok, chat_tok) -> None:
    assert resolve_format(tok).name == "tofu"  # meow's tiny tokenizers declare it (FORMAT_KEY)
    assert resolve_format(chat_tok).name == "chat"
    assert resolve_format(chat_tok, "llama2").name == "llama2"
    with pytest.raises(ConfigError, match="chat template"):
        resolve_format(tok, "chat")
    with pytest.raises(ConfigError, match="unknown prompt format"):
        resolve_format(tok, "alpaca")


def test_collate_pads_right_and_masks_padding(tok) -> None:
    fmt = resolve_format(tok, "tofu")
    exs = [encode_example(tok, fmt, q, a) for q, a in QA[:3]]
    batch = collate(exs, tok.pad_token_id)
    width = max(len(e.input_ids) for e in exs)
    assert batch["input_ids"].shape == (3, width)
    for i, e in enumerate(exs):
        n = len(e.input_ids)
        assert batch["input_ids"][i, :n].tolist() == e.input_ids
        assert batch["labels"][i, :n].tolist() == e.labels
        assert batch["attention_mask"][i].tolist() == [1] * n + [0] * (width - n)
        assert (batch["labels"][i, n:] == IGNORE_INDEX).all()
        assert (batch["input_ids"][i, n:] == tok.pad_token_id).all()


def test_max_length_truncates_both(tok) -> None:
    fmt = resolve_format(tok, "tofu")
    ex = encode_example(tok, fmt, *QA[0], max_length=10)
    assert len(ex.input_ids) == len(ex.labels) == 10
