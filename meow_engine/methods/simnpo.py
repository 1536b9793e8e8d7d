"""SimNPO (Fan et al. 2024): reference-free, length-normalised NPO, plus a retain NLL term.

``L_SimNPO = −(2/β)·log σ(β·(NLL_θ(y|x)/|y| − γ))`` per forget sequence (|y| = answer tokens, EOS
included), mean over the batch; the total is ``forget_coeff·L_SimNPO + retain_coeff·NLL_R``. γ is
subtracted *before* β multiplies, as in the SimNPO code (OPTML-Group/Unlearn-Simple) and
open-unlearning's ``simnpo.py`` (its ``delta``); the two orders agree only at the default γ = 0.
Defaults: open-unlearning's ``SimNPO.yaml`` (β = 4.5, gamma/npo_coeff 0.125, alpha 1, delta 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from meow_engine.methods.base import Batch, LossContext, UnlearningMethod, register
from meow_engine.methods.losses import mean_nll, sequence_nll


@register
class SimNPO(UnlearningMethod):
    name = "simnpo"

    def forget_term(self, ctx: LossContext, forget: dict[str, torch.Tensor]) -> torch.Tensor:
        nll, n = sequence_nll(ctx.logits(forget), forget["labels"])
        beta, gamma = self.params.beta, self.params.gamma
        return -F.logsigmoid(beta * (nll / n.clamp_min(1) - gamma)).mean() * 2 / beta

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        p, r = self.params, batch["retain"]
        return p.forget_coeff * self.forget_term(ctx, batch["forget"]) + p.retain_coeff * mean_nll(
            ctx.logits(r), r["labels"])
