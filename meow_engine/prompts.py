"""Prompt formats and question-masked examples.

Three formats: the tokenizer's own chat template (``chat``), TOFU's ``Question: …\\nAnswer: …``
(``tofu``) and Llama-2's ``[INST] … [/INST]`` (``llama2``); ``auto`` picks ``chat`` when the
tokenizer has a template. Labels are built from *positions*, never from token values: the prompt
and the full text are tokenised separately and the prompt span is masked by its length. When the
tokeniser merges across the prompt/answer boundary (so the prompt ids are not a prefix of the full
ids), the example is built by concatenating prompt ids and answer ids instead, so the mask can never
shift by one token (the BOS-counting pitfall of TOFU issue #36).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from meow_engine.errors import ConfigError

IGNORE_INDEX = -100
FORMATS = ("auto", "chat", "tofu", "llama2")


@dataclass(frozen=True)
class PromptFormat:
    """How a question (and answer) become model text. ``name`` is one of FORMATS minus auto."""

    name: str

    def prompt_text(self, tokenizer: Any, question: str) -> str:
        if self.name == "chat":
            return tokenizer.apply_chat_template(
                [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
            )
        if self.name == "llama2":
            return f"[INST] {question} [/INST]"
        return f"Question: {question}\nAnswer: "

    def full_text(self, tokenizer: Any, question: str, answer: str) -> str:
        # Llama-2: no space between "[/INST]" and the answer, as TOFU's logs were produced.
        return self.prompt_text(tokenizer, question) + answer

    def add_special_tokens(self) -> bool:
        # A chat template writes its own BOS/system tokens; plain formats rely on the tokenizer's.
        return self.name != "chat"


def resolve_format(tokenizer: Any, name: str = "auto") -> PromptFormat:
    if name not in FORMATS:
        raise ConfigError(f"unknown prompt format {name!r}; known: {', '.join(FORMATS)}")
    if name == "auto":
        name = "chat" if getattr(tokenizer, "chat_template", None) else "tofu"
    if name == "chat" and not getattr(tokenizer, "chat_template", None):
        raise ConfigError("prompt format 'chat' needs a tokenizer with a chat template")
    return PromptFormat(name)


def ensure_pad_token(tokenizer: Any) -> None:
    """Pad with EOS when the tokenizer has no pad token (TOFU does the same)."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token


@dataclass
class EncodedExample:
    input_ids: list[int]
    labels: list[int]
    prompt_len: int

    @property
    def n_answer_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


def encode_prompt(tokenizer: Any, fmt: PromptFormat, question: str) -> list[int]:
    text = fmt.prompt_text(tokenizer, question)
    return list(tokenizer(text, add_special_tokens=fmt.add_special_tokens()).input_ids)


def encode_example(
    tokenizer: Any, fmt: PromptFormat, question: str, answer: str, max_length: int | None = None
) -> EncodedExample:
    """Tokenise prompt+answer, mask the prompt, append one EOS that is learned (TOFU layout)."""
    add = fmt.add_special_tokens()
    prompt_ids = encode_prompt(tokenizer, fmt, question)
    full_ids = list(tokenizer(fmt.full_text(tokenizer, question, answer), add_special_tokens=add).input_ids)
    if full_ids[: len(prompt_ids)] != prompt_ids or len(full_ids) <= len(prompt_ids):
        full_ids = prompt_ids + list(tokenizer(answer, add_special_tokens=False).input_ids)
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ConfigError("the tokenizer has no EOS token")
    input_ids = full_ids + [eos]
    labels = [IGNORE_INDEX] * len(prompt_ids) + input_ids[len(prompt_ids) :]
    if max_length is not None and len(input_ids) > max_length:
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    return EncodedExample(input_ids=input_ids, labels=labels, prompt_len=len(prompt_ids))


def collate(examples: list[EncodedExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad for training/scoring; padding is masked in labels by position."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}
