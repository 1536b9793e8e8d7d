"""Gradient ascent (TOFU ``grad_ascent``, open-unlearning ``GradAscent``): minimise −NLL of the forget answers."""

from __future__ import annotations

import torch

from meow_engine.methods.base import Batch, LossContext, UnlearningMethod, register
from meow_engine.methods.losses import mean_nll


@register
class GradientAscent(UnlearningMethod):
    name = "ga"

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        forget = batch["forget"]
        return -mean_nll(ctx.logits(forget), forget["labels"])
