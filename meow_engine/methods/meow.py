"""MEOW (arXiv 2409.11844): NLL on MEMO-selected inverted answers to the forget questions.

The loss is plain SFT (the reference's ``meow_memo`` branch: HF ``outputs.loss``, a token mean over
the micro-batch); what makes it MEOW is the data — the pipeline inverts each fact, scores the
candidates with MEMO, selects top-k and passes the round-robin rows as ``forget_rows``. No retain
term and no reference model, as in the reference code (meow-method.md §6).
"""

from __future__ import annotations

import torch

from meow_engine.methods.base import Batch, LossContext, UnlearningMethod, register
from meow_engine.methods.losses import mean_nll


@register
class MEOW(UnlearningMethod):
    name = "meow"

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        rows = batch["forget"]
        return mean_nll(ctx.logits(rows), rows["labels"])
