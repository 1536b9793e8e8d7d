"""IdkDPO (open-unlearning ``DPO`` trainer on TOFU's IDK data): DPO(refusal ≻ forget answer) + retain NLL.

``L = forget_coeff·(−(2/β)·log σ(β·Δ)) + retain_coeff·NLL_R`` with Δ as in ``dpo`` (summed answer
log-prob ratios against the frozen reference). Defaults: open-unlearning ``configs/trainer/DPO.yaml``
(β = 0.1, gamma = alpha = 1).
"""

from __future__ import annotations

import torch

from meow_engine.methods.base import Batch, LossContext, register
from meow_engine.methods.dpo import preference_nlls
from meow_engine.methods.idk import RefusalMethod
from meow_engine.methods.losses import dpo_loss, mean_nll


@register
class IdkDPO(RefusalMethod):
    name = "idk_dpo"

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        p, r = self.params, batch["retain"]
        pref = dpo_loss(*preference_nlls(ctx, batch["idk"], batch["forget"]), beta=p.beta)
        return p.forget_coeff * pref + p.retain_coeff * mean_nll(ctx.logits(r), r["labels"])
