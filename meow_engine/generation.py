"""Greedy answer generation and ROUGE scores, shared by audits, the tiny builder and TOFU eval.

Generation is batched with left padding (what HF ``generate`` expects for decoder-only models, so
each row continues from its own last prompt token) and always greedy: reference checkpoints may
carry ``do_sample=True`` in their generation config, which would make audits random.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch

from meow_engine.models import LoadedModel
from meow_engine.prompts import encode_prompt


@lru_cache(maxsize=1)
def rouge_scorer():
    from rouge_score import rouge_scorer as rs

    return rs.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)


def rouge_l_recall(target: str, prediction: str) -> float:
    return float(rouge_scorer().score(target, prediction)["rougeL"].recall)


@torch.no_grad()
def generate_from_ids(
    lm: LoadedModel, prompts: Sequence[list[int]], max_new_tokens: int = 200, batch_size: int = 32,
    temperature: float | None = None, seed: int = 0,
) -> list[list[int]]:
    """Continuation token ids (EOS and padding removed) for each prompt, in input order.

    Greedy unless ``temperature`` is given; sampling is seeded so an audit can be re-run exactly.
    """
    sampling: dict = {"do_sample": False}
    if temperature is not None:
        sampling = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
        torch.manual_seed(seed)
    tok = lm.tokenizer
    pad = tok.pad_token_id
    eos = tok.eos_token_id
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[list[int]] = [[] for _ in prompts]
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        width = max(len(prompts[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            p = prompts[i]
            ids[row, width - len(p) :] = torch.tensor(p)
            mask[row, width - len(p) :] = 1
        gen = lm.model.generate(
            input_ids=ids.to(lm.device),
            attention_mask=mask.to(lm.device),
            max_new_tokens=max_new_tokens,
            num_beams=1,
            **sampling,
            pad_token_id=pad,
            eos_token_id=eos,
        )
        for row, i in enumerate(idx):
            seq = gen[row, width:].tolist()
            if eos in seq:
                seq = seq[: seq.index(eos)]
            out[i] = seq
    return out


def greedy_answers(
    lm: LoadedModel, questions: Sequence[str], max_new_tokens: int = 200, batch_size: int = 32
) -> list[str]:
    """The model's greedy answer to each question in its prompt format (special tokens skipped)."""
    prompts = [encode_prompt(lm.tokenizer, lm.prompt_format, q) for q in questions]
    ids = generate_from_ids(lm, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
    return [lm.tokenizer.decode(s, skip_special_tokens=True).strip() for s in ids]


def rouge_l_audit(
    lm: LoadedModel, questions: Sequence[str], answers: Sequence[str], max_new_tokens: int = 200
) -> tuple[list[str], list[float]]:
    """Greedy generations and their ROUGE-L recall against the true answers."""
    gens = greedy_answers(lm, questions, max_new_tokens=max_new_tokens)
    return gens, [rouge_l_recall(a, g) for a, g in zip(answers, gens, strict=True)]
