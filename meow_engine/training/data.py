"""Training rows → question-masked micro-batches for the parts a method asks for.

Rows are tokenised once with ``prompts.encode_example`` (question masked, one learned EOS,
truncated at ``max_length``). Micro-batches are consecutive slices of an endless stream of
per-epoch permutations, so every optimizer step sees the same number of rows and a run is fully
determined by the seed. Retain rows come from their own seeded stream (TOFU pairs each forget row
with a random retain row); ``idk`` rows reuse the forget questions of the same micro-batch with a
seeded random refusal, and ``alt`` rows with a seeded random one of that fact's alternate answers
(``method.alternates``), so DPO's preferred and rejected answers stay aligned row by row.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from meow_engine.errors import ConfigError
from meow_engine.methods.base import Batch, UnlearningMethod
from meow_engine.models import LoadedModel
from meow_engine.prompts import EncodedExample, collate, encode_example

__all__ = ["TrainRow", "BatchStream", "encode_rows", "rows_from_facts"]


@dataclass(frozen=True)
class TrainRow:
    """One (question, answer) training sequence; the answer is what the loss sees."""

    question: str
    answer: str
    #: bare ``question answer`` text with no prompt format (how MEMO prompts and pretraining text look)
    raw: bool = False


class _RawFormat:
    """The prompt-format interface ``encode_example`` needs, for bare text: question, a space, answer."""

    name = "raw"
    tofu_layout = False

    def prompt_text(self, tokenizer: object, question: str) -> str:
        return question + " "

    def answer_text(self, answer: str) -> str:
        return answer

    def full_text(self, tokenizer: object, question: str, answer: str) -> str:
        return question + " " + answer

    def add_special_tokens(self) -> bool:
        return True


RAW_FORMAT = _RawFormat()


def rows_from_facts(facts: Sequence[object]) -> list[TrainRow]:
    """Anything with ``question`` and ``answer`` attributes (e.g. ``Fact``) → rows."""
    return [TrainRow(f.question, f.answer) for f in facts]  # type: ignore[attr-defined]


def encode_rows(lm: LoadedModel, rows: Sequence[TrainRow], max_length: int, what: str) -> list[EncodedExample]:
    out = []
    for i, row in enumerate(rows):
        fmt = RAW_FORMAT if row.raw else lm.prompt_format
        ex = encode_example(lm.tokenizer, fmt, row.question, row.answer, max_length)  # type: ignore[arg-type]
        if ex.n_answer_tokens == 0:
            raise ConfigError(f"{what} row {i}: the prompt alone has {ex.prompt_len} tokens, "
                              f"max_length is {max_length}; no answer token is left to train on")
        out.append(ex)
    return out


def _permutations(n: int, generator: torch.Generator) -> Iterator[int]:
    while True:
        yield from torch.randperm(n, generator=generator).tolist()


class BatchStream:
    """Endless iterator of ``Batch`` dicts (part name → input_ids/labels/attention_mask)."""

    def __init__(self, lm: LoadedModel, method: UnlearningMethod, forget_rows: Sequence[TrainRow],
                 retain_rows: Sequence[TrainRow] | None, batch_size: int, max_length: int, seed: int) -> None:
        if not forget_rows:
            raise ConfigError("no training rows")
        self.lm, self.parts, self.batch_size, self.max_length = lm, method.parts, batch_size, max_length
        self.pad_id = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else lm.tokenizer.eos_token_id
        self.forget_rows = list(forget_rows)
        self.forget = encode_rows(lm, self.forget_rows, max_length, "forget")
        self._forget_order = _permutations(len(self.forget), torch.Generator().manual_seed(seed))
        self.retain: list[EncodedExample] = []
        if "retain" in self.parts:
            if not retain_rows:
                raise ConfigError(f"method {method.name!r} needs retain facts")
            self.retain = encode_rows(lm, retain_rows, max_length, "retain")
            self._retain_order = _permutations(len(self.retain), torch.Generator().manual_seed(seed + 1))
        if "idk" in self.parts:
            self.refusals = method.refusals()
            self._idk_rng = random.Random(seed + 2)
            self._idk_cache: dict[tuple[int, int], EncodedExample] = {}
        if "alt" in self.parts:
            alts = method.alternates([(r.question, r.answer) for r in self.forget_rows],
                                     [(r.question, r.answer) for r in retain_rows or []])
            if len(alts) != len(self.forget_rows) or not all(alts):
                raise ConfigError(f"method {method.name!r}: every forget row needs at least one alternate answer")
            self._alt = [encode_rows(lm, [TrainRow(row.question, a) for a in cands], max_length, "alt")
                         for row, cands in zip(self.forget_rows, alts, strict=True)]
            self._alt_rng = random.Random(seed + 3)

    def _idk(self, forget_index: int) -> EncodedExample:
        j = self._idk_rng.randrange(len(self.refusals))
        key = (forget_index, j)
        if key not in self._idk_cache:
            q = self.forget_rows[forget_index].question
            self._idk_cache[key] = encode_rows(self.lm, [TrainRow(q, self.refusals[j])], self.max_length, "idk")[0]
        return self._idk_cache[key]

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        idx = [next(self._forget_order) for _ in range(self.batch_size)]
        batch: Batch = {}
        if "forget" in self.parts:
            batch["forget"] = collate([self.forget[i] for i in idx], self.pad_id)
        if "idk" in self.parts:
            batch["idk"] = collate([self._idk(i) for i in idx], self.pad_id)
        if "alt" in self.parts:
            batch["alt"] = collate([self._alt[i][self._alt_rng.randrange(len(self._alt[i]))] for i in idx], self.pad_id)
        if "retain" in self.parts:
            batch["retain"] = collate([self.retain[next(self._retain_order)] for _ in idx], self.pad_id)
        return batch
