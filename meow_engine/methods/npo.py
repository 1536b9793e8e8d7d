"""NPO (Zhang et al. 2024) and NPO + retain NLL.

``L_NPO = −(2/β)·log σ(β·(NLL_θ − NLL_ref))`` with *summed* per-sequence NLLs of the forget answers
and the original model as reference (``ref_policy='fine_tuned'``). At the start of training the
policy equals the reference, so the loss is exactly (2/β)·log 2. β = 0.1 as open-unlearning.

Naming: meow's ``npo`` is the pure NPO loss; open-unlearning's ``NPO`` trainer always adds the
retain NLL, which is meow's ``npo_gd`` (alias ``NPO``).
"""

from __future__ import annotations

import torch

from meow_engine.methods.base import Batch, LossContext, UnlearningMethod, register
from meow_engine.methods.losses import mean_nll, npo_loss, sequence_nll


def _npo_term(ctx: LossContext, forget: dict[str, torch.Tensor], beta: float) -> torch.Tensor:
    cur, _ = sequence_nll(ctx.logits(forget), forget["labels"])
    ref, _ = sequence_nll(ctx.reference_logits(forget), forget["labels"])
    return npo_loss(cur, ref, beta)


@register
class NPO(UnlearningMethod):
    name = "npo"

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        return _npo_term(ctx, batch["forget"], self.params.beta)


@register
class NPOGradientDifference(UnlearningMethod):
    name = "npo_gd"

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        p = self.params
        r = batch["retain"]
        return p.npo_coeff * _npo_term(ctx, batch["forget"], p.beta) + p.retain_coeff * mean_nll(
            ctx.logits(r), r["labels"])
