"""SimNPO (Fan et al. 2024): reference-free, length-normalised NPO, plus a retain NLL term.

``L_SimNPO = −(2/β)·log σ(−(β/|y|)·log π_θ(y|x) − γ)`` per forget sequence (|y| = answer tokens,
EOS included), mean over the batch; the total is ``forget_coeff·L_SimNPO + retain_coeff·NLL_R``.
Defaults are SimNPO's TOFU forget10 recipe (β = 4.5, npo_coeff 0.125, retain weight 1, γ = 0);
open-unlearning writes the margin as ``delta = γ/β``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from meow_engine.methods.base import Batch, LossContext, MethodParams, UnlearningMethod, register
from meow_engine.methods.losses import mean_nll, sequence_nll


class SimNPOParams(MethodParams):
    beta: float = Field(4.5, gt=0, le=100, description="inverse temperature β")
    gamma: float = Field(0.0, ge=0, description="reward margin γ")
    forget_coeff: float = Field(0.125, ge=0, description="weight of L_SimNPO (SimNPO's npo_coeff)")
    retain_coeff: float = Field(1.0, ge=0, description="weight of NLL_R")


@register
class SimNPO(UnlearningMethod):
    name = "simnpo"
    description = "forget_coeff·SimNPO (reference-free, length-normalised) + retain_coeff·NLL_R"
    needs_retain = True
    parts = ("forget", "retain")
    Params = SimNPOParams

    def forget_term(self, ctx: LossContext, forget: dict[str, torch.Tensor]) -> torch.Tensor:
        nll, n = sequence_nll(ctx.logits(forget), forget["labels"])
        beta, gamma = self.params.beta, self.params.gamma
        return -F.logsigmoid(beta * nll / n.clamp_min(1) - gamma).mean() * 2 / beta

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        p, r = self.params, batch["retain"]
        return p.forget_coeff * self.forget_term(ctx, batch["forget"]) + p.retain_coeff * mean_nll(
            ctx.logits(r), r["labels"])
