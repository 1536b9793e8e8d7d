"""Teacher-forced answer scoring: summed NLL and token counts per (question, answer).

One batched pass serves TOFU probabilities, truth ratios and membership scores. Examples come
from ``prompts.encode_example`` (prompt masked by position, one learned EOS appended, truncated
at ``max_length`` like TOFU's ``convert_raw_data_to_model_format``), so |a| includes EOS exactly
as in the legacy logs. Rows are sorted by length before batching to keep padding small.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from meow_engine.errors import ConfigError
from meow_engine.models import LoadedModel
from meow_engine.prompts import IGNORE_INDEX, collate, encode_example

#: TOFU's evaluation truncation (``max_length`` 200 in ``eval_everything.yaml``)
EVAL_MAX_LENGTH = 200


def iter_answer_logits(
    lm: LoadedModel,
    questions: Sequence[str],
    answers: Sequence[str],
    max_length: int = EVAL_MAX_LENGTH,
    batch_size: int = 16,
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Yield ``(row, logits[n, V], targets[n])`` for the answer tokens of each pair (float32 logits).

    ``logits[t]`` is the model's next-token distribution that predicts ``targets[t]``.
    """
    if len(questions) != len(answers):
        raise ConfigError(f"{len(questions)} questions but {len(answers)} answers")
    tok = lm.tokenizer
    examples = [encode_example(tok, lm.prompt_format, q, a, max_length=max_length)
                for q, a in zip(questions, answers, strict=True)]
    for i, e in enumerate(examples):
        if e.n_answer_tokens == 0:
            raise ConfigError(f"row {i}: the prompt fills max_length={max_length}; no answer token is left to score")
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = collate([examples[i] for i in idx], pad)
            logits = lm.model(input_ids=batch["input_ids"].to(lm.device),
                              attention_mask=batch["attention_mask"].to(lm.device)).logits
            shifted = logits[:, :-1, :].float()
            labels = batch["labels"][:, 1:].to(lm.device)
            for row, i in enumerate(idx):
                keep = labels[row] != IGNORE_INDEX
                yield i, shifted[row][keep], labels[row][keep]


def score_answers(
    lm: LoadedModel,
    questions: Sequence[str],
    answers: Sequence[str],
    max_length: int = EVAL_MAX_LENGTH,
    batch_size: int = 16,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Summed answer NLL (incl. EOS) and answer token count per pair, in input order."""
    losses = np.zeros(len(questions), dtype=np.float64)
    counts = np.zeros(len(questions), dtype=np.int64)
    for done, (i, logits, targets) in enumerate(iter_answer_logits(lm, questions, answers, max_length, batch_size)):
        nll = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
        losses[i] = float(nll)
        counts[i] = int(targets.numel())
        if on_batch is not None and (done + 1) % batch_size == 0:
            on_batch(done + 1)
    return losses, counts
