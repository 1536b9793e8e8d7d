"""WGA, weighted gradient ascent (Wang et al. 2025, G-effect, arXiv:2502.19301; open-unlearning ``wga.py``).

Per answer token, forget term = −mean_t(p_t^β·NLL_t) with p_t = exp(−NLL_t) detached, so tokens the
model already gives up on stop pulling; total ``forget_coeff·forget + retain_coeff·NLL_R``.
Defaults from ``WGA.yaml``: β = 1, gamma = alpha = 1. (The reference trainer builds an unused
reference model; meow does not.)
"""

from __future__ import annotations

import torch

from meow_engine.methods.base import Batch, LossContext, UnlearningMethod, register
from meow_engine.methods.losses import mean_nll, weighted_ascent


@register
class WGA(UnlearningMethod):
    name = "wga"

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        f, r, p = batch["forget"], batch["retain"], self.params
        forget = weighted_ascent(ctx.logits(f), f["labels"], lambda q: q.pow(p.beta))
        return p.forget_coeff * forget + p.retain_coeff * mean_nll(ctx.logits(r), r["labels"])
