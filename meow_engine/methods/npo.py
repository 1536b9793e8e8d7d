"""NPO (Zhang et al. 2024) and NPO+GD, as TOFU/MEOW's trainer computes them.

``L_NPO = −(2/β)·log σ(β·(NLL_θ − NLL_ref))`` with *summed* per-sequence NLLs of the forget answers
and the original model as reference (``ref_policy='fine_tuned'``). At the start of training the
policy equals the reference, so the loss is exactly (2/β)·log 2. β = 0.1 as open-unlearning.
"""

from __future__ import annotations

import torch
from pydantic import Field

from meow_engine.methods.base import Batch, LossContext, MethodParams, UnlearningMethod, register
from meow_engine.methods.losses import mean_nll, npo_loss, sequence_nll


class NPOParams(MethodParams):
    beta: float = Field(0.1, gt=0, le=100, description="inverse temperature β")


class NPOGDParams(NPOParams):
    npo_coeff: float = Field(1.0, ge=0, description="weight of the NPO term")
    retain_coeff: float = Field(1.0, ge=0, description="weight of NLL_R (TOFU's grad_diff_coeff)")


def _npo_term(ctx: LossContext, forget: dict[str, torch.Tensor], beta: float) -> torch.Tensor:
    cur, _ = sequence_nll(ctx.logits(forget), forget["labels"])
    ref, _ = sequence_nll(ctx.reference_logits(forget), forget["labels"])
    return npo_loss(cur, ref, beta)


@register
class NPO(UnlearningMethod):
    name = "npo"
    description = "−(2/β)·log σ(β·(NLL_θ − NLL_ref)) on forget answers"
    needs_reference = True
    Params = NPOParams

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        return _npo_term(ctx, batch["forget"], self.params.beta)


@register
class NPOGradientDifference(UnlearningMethod):
    name = "npo_gd"
    description = "npo_coeff·L_NPO + retain_coeff·NLL_R"
    needs_reference = True
    needs_retain = True
    parts = ("forget", "retain")
    Params = NPOGDParams

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        p = self.params
        r = batch["retain"]
        return p.npo_coeff * _npo_term(ctx, batch["forget"], p.beta) + p.retain_coeff * mean_nll(
            ctx.logits(r), r["labels"])
