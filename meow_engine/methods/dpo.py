"""DPO with a refusal as the preferred answer and the forget answer as the rejected one (TOFU ``dpo``).

``Δ = [ℓ_θ(y_idk) − ℓ_ref(y_idk)] − [ℓ_θ(y_f) − ℓ_ref(y_f)]`` with summed answer log-probs,
``L = −(2/β)·log σ(β·Δ)`` (meow-method.md §7; open-unlearning's scaling). β = 0.1. No retain
term; ``idk_dpo`` adds one (open-unlearning's IdkDPO).
"""

from __future__ import annotations

import torch

from meow_engine.methods.base import Batch, LossContext, Part, register
from meow_engine.methods.idk import RefusalMethod
from meow_engine.methods.losses import dpo_loss, sequence_nll


def preference_nlls(ctx: LossContext, win: Part, lose: Part) -> tuple[torch.Tensor, ...]:
    """Summed answer NLLs (policy win, reference win, policy lose, reference lose) per sequence."""
    return (sequence_nll(ctx.logits(win), win["labels"])[0], sequence_nll(ctx.reference_logits(win), win["labels"])[0],
            sequence_nll(ctx.logits(lose), lose["labels"])[0],
            sequence_nll(ctx.reference_logits(lose), lose["labels"])[0])


@register
class DPO(RefusalMethod):
    name = "dpo"

    def margin(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        """Δ per sequence (log-ratio of the refusal minus log-ratio of the forget answer)."""
        win, win_ref, lose, lose_ref = preference_nlls(ctx, batch["idk"], batch["forget"])
        # ℓ = −NLL, so Δ = (−win + win_ref) − (−lose + lose_ref)
        return (win_ref - win) - (lose_ref - lose)

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        return dpo_loss(*preference_nlls(ctx, batch["idk"], batch["forget"]), beta=self.params.beta)
