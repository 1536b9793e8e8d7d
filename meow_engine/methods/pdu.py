"""PDU, primal-dual unlearning (Entesari et al. 2025, arXiv:2506.05314; open-unlearning ``pdu.py``).

Forget term: the logit-margin flattening loss ``mean_t (max_v z_tv − mean_v z_tv)²`` over the
positions that predict answer tokens (zero when the output is uniform). Retain: NLL_R under the
constraint NLL_R ≤ ε. Loss ``forget_coeff·forget + λ·(NLL_R − ε)``; with ``primal_dual`` the dual
variable λ (starting at ``retain_coeff``) takes a dual-ascent step ``λ ← max(0, λ + η·(NLL_R − ε))``
after each micro-batch once the warm-up is over, as the reference's per-step update.

Differences from the reference: the warm-up is a fraction of the optimizer steps
(``dual_warmup_ratio``; the reference counts epochs, 5 of 10 by default) and only the per-step
dual update exists (not ``dual_update_upon: epoch``); the forget positions follow meow's shifted
convention (logits that predict an answer token) where the reference takes the logits *at*
labelled positions, one position later.
"""

from __future__ import annotations

import math

import torch

from meow_engine.methods.base import Batch, LossContext, UnlearningMethod, register
from meow_engine.methods.losses import answer_positions, mean_nll


def margin_flattening(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    z, _ = answer_positions(logits, labels)
    return (z.max(dim=-1).values - z.mean(dim=-1)).pow(2).mean()


@register
class PDU(UnlearningMethod):
    name = "pdu"

    def __init__(self, params: dict | None = None) -> None:
        super().__init__(params)
        #: the dual variable λ (the retain preference)
        self.dual = float(self.params.retain_coeff)
        self._updating = self.params.dual_warmup_ratio == 0

    def begin_step(self, step: int, total: int) -> None:
        self._updating = step > math.floor(self.params.dual_warmup_ratio * total)

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        f, r, p = batch["forget"], batch["retain"], self.params
        forget = margin_flattening(ctx.logits(f), f["labels"])
        slack = mean_nll(ctx.logits(r), r["labels"]) - p.retain_loss_eps
        loss = p.forget_coeff * forget + self.dual * slack
        if p.primal_dual and self._updating:
            self.dual = max(0.0, self.dual + p.dual_step_size * float(slack.detach()))
        return loss
