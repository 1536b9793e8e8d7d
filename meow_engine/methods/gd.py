"""Gradient difference (TOFU ``grad_diff``): ascend on forget, descend on retain."""

from __future__ import annotations

import torch
from pydantic import Field

from meow_engine.methods.base import Batch, LossContext, MethodParams, UnlearningMethod, register
from meow_engine.methods.losses import mean_nll


class GDParams(MethodParams):
    forget_coeff: float = Field(1.0, ge=0, description="weight of −NLL_F")
    retain_coeff: float = Field(1.0, ge=0, description="weight of NLL_R")


@register
class GradientDifference(UnlearningMethod):
    name = "gd"
    description = "−forget_coeff·NLL_F + retain_coeff·NLL_R"
    needs_retain = True
    parts = ("forget", "retain")
    Params = GDParams

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        f, r = batch["forget"], batch["retain"]
        p = self.params
        return -p.forget_coeff * mean_nll(ctx.logits(f), f["labels"]) + p.retain_coeff * mean_nll(
            ctx.logits(r), r["labels"])
