"""KL baseline (TOFU ``grad_ascent_KL``): ascend on forget, keep retain outputs near the reference.

KL(p_ref ‖ p_θ) over every token position of the retain inputs, padding included, ``batchmean``
over the flattened positions — exactly TOFU's ``F.kl_div(cur_logp, ref_logp, 'batchmean',
log_target=True)``.
"""

from __future__ import annotations

import torch

from meow_engine.methods.base import Batch, LossContext, UnlearningMethod, register
from meow_engine.methods.losses import kl_reference_to_policy, mean_nll


@register
class GradientAscentKL(UnlearningMethod):
    name = "kl"

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        f, r = batch["forget"], batch["retain"]
        p = self.params
        kl = kl_reference_to_policy(ctx.logits(r), ctx.reference_logits(r))
        return -p.forget_coeff * mean_nll(ctx.logits(f), f["labels"]) + p.kl_coeff * kl
