"""Gradient difference (TOFU ``grad_diff``, open-unlearning ``GradDiff``): ascend on forget, descend on retain."""

from __future__ import annotations

import torch

from meow_engine.methods.base import Batch, LossContext, UnlearningMethod, register
from meow_engine.methods.losses import mean_nll


@register
class GradientDifference(UnlearningMethod):
    name = "gd"

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        f, r = batch["forget"], batch["retain"]
        p = self.params
        return -p.forget_coeff * mean_nll(ctx.logits(f), f["labels"]) + p.retain_coeff * mean_nll(
            ctx.logits(r), r["labels"])
