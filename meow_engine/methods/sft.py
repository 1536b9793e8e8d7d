"""Plain question-masked SFT: learn the given rows (``meow train`` uses it to make target models)."""

from __future__ import annotations

import torch

from meow_engine.methods.base import Batch, LossContext, UnlearningMethod, register
from meow_engine.methods.losses import mean_nll


@register
class SFT(UnlearningMethod):
    name = "sft"

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        rows = batch["forget"]
        return mean_nll(ctx.logits(rows), rows["labels"])
