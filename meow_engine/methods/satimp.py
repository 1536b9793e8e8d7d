"""SatImp (Yang et al. 2025, arXiv:2505.11953; open-unlearning ``satimp.py``): weighted gradient ascent.

Per answer token, NLL_t and p_t = exp(−NLL_t); forget term = −mean_t(p_t^β1·(1−p_t)^β2·NLL_t) with
the weights detached (saturation × importance); total ``forget_coeff·forget + retain_coeff·NLL_R``.
Defaults from ``SatImp.yaml``: β1 = 5, β2 = 1, gamma 0.1, alpha 1. The reference trainer also
builds a reference model it never uses; meow does not.
"""

from __future__ import annotations

import torch

from meow_engine.methods.base import Batch, LossContext, UnlearningMethod, register
from meow_engine.methods.losses import mean_nll, weighted_ascent


@register
class SatImp(UnlearningMethod):
    name = "satimp"

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        f, r, p = batch["forget"], batch["retain"], self.params
        forget = weighted_ascent(ctx.logits(f), f["labels"], lambda q: q.pow(p.beta1) * (1 - q).pow(p.beta2))
        return p.forget_coeff * forget + p.retain_coeff * mean_nll(ctx.logits(r), r["labels"])
