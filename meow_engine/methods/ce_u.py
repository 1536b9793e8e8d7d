"""CE-U, cross-entropy unlearning (Yang et al. 2025, arXiv:2503.01224; open-unlearning ``ceu.py``).

At each position predicting an answer token y_t: target = softmax of the model's own detached
logits with y_t's logit set to −∞ (all mass moved to the other tokens); loss = cross-entropy of the
logits against that target, mean over positions. The first ``ignore_first_n_answer_tokens`` answer
tokens of each row are left out (1, ``CEU.yaml``; the paper's footnote on training settings). No
retain term and no reference model, as the reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from meow_engine.methods.base import Batch, LossContext, UnlearningMethod, register
from meow_engine.methods.losses import answer_positions
from meow_engine.prompts import IGNORE_INDEX


def drop_first_answer_tokens(labels: torch.Tensor, n: int) -> torch.Tensor:
    """Labels with each row's first ``n`` answer tokens masked to −100."""
    answer = labels != IGNORE_INDEX
    return labels.masked_fill(answer & (answer.cumsum(dim=-1) <= n), IGNORE_INDEX)


@register
class CEU(UnlearningMethod):
    name = "ce_u"

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        f = batch["forget"]
        labels = drop_first_answer_tokens(f["labels"], self.params.ignore_first_n_answer_tokens)
        logits, targets = answer_positions(ctx.logits(f), labels)
        if targets.numel() == 0:  # every answer shorter than the skipped prefix: nothing to push
            return logits.sum() * 0.0
        target_logits = logits.detach().scatter(-1, targets.unsqueeze(-1), float("-inf"))
        return F.cross_entropy(logits, F.softmax(target_logits, dim=-1))
