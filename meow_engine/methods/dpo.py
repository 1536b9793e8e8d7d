"""DPO with a refusal as the preferred answer and the forget answer as the rejected one (TOFU ``dpo``).

``Δ = [ℓ_θ(y_idk) − ℓ_ref(y_idk)] − [ℓ_θ(y_f) − ℓ_ref(y_f)]`` with summed answer log-probs,
``L = −(2/β)·log σ(β·Δ)`` (meow-method.md §7; open-unlearning's scaling). β = 0.1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from meow_engine.methods.base import Batch, LossContext, UnlearningMethod, register
from meow_engine.methods.idk import RefusalParams
from meow_engine.methods.losses import sequence_nll
from meow_engine.methods.refusals import load_refusals


class DPOParams(RefusalParams):
    beta: float = Field(0.1, gt=0, le=100, description="inverse temperature β")


@register
class DPO(UnlearningMethod):
    name = "dpo"
    description = "−(2/β)·log σ(β·Δ), refusal preferred over the forget answer"
    needs_reference = True
    parts = ("idk", "forget")
    Params = DPOParams

    def __init__(self, params: dict | None = None) -> None:
        super().__init__(params)
        self._refusals = load_refusals(self.params.refusals_file)

    def refusals(self) -> list[str]:
        return self._refusals

    def margin(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        """Δ per sequence (log-ratio of the refusal minus log-ratio of the forget answer)."""
        i, f = batch["idk"], batch["forget"]
        win, _ = sequence_nll(ctx.logits(i), i["labels"])
        lose, _ = sequence_nll(ctx.logits(f), f["labels"])
        win_ref, _ = sequence_nll(ctx.reference_logits(i), i["labels"])
        lose_ref, _ = sequence_nll(ctx.reference_logits(f), f["labels"])
        # ℓ = −NLL, so Δ = (−win + win_ref) − (−lose + lose_ref)
        return (win_ref - win) - (lose_ref - lose)

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        beta = self.params.beta
        return -F.logsigmoid(beta * self.margin(ctx, batch)).mean() * 2 / beta
