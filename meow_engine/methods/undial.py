"""UNDIAL (Dong et al. 2024): self-distillation towards the reference with the memorised token damped.

At each position that predicts an answer token y_t: target = softmax(z_ref − β·onehot(y_t)) where
z_ref are the frozen reference's logits; loss = cross-entropy of the policy against that target,
mean over answer positions. β = 10 (open-unlearning ``UNDIAL.yaml``), whose retain weight alpha is
0, so meow's ``undial`` has no retain term.

Difference from open-unlearning's ``compute_undial_loss``: that averages over *all* positions
(prompt and padding too, whose label −100 then indexes the vocabulary from the end); here only
the positions that predict answer tokens count, as the method describes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from meow_engine.methods.base import Batch, LossContext, UnlearningMethod, register
from meow_engine.methods.losses import answer_positions


@register
class UNDIAL(UnlearningMethod):
    name = "undial"

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        f = batch["forget"]
        logits, targets = answer_positions(ctx.logits(f), f["labels"])
        ref, _ = answer_positions(ctx.reference_logits(f), f["labels"])
        damped = ref - self.params.beta * F.one_hot(targets, ref.shape[-1]).to(ref.dtype)
        return F.cross_entropy(logits, F.softmax(damped, dim=-1))
