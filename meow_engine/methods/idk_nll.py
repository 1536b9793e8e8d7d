"""IdkNLL: NLL of a refusal to each forget question plus a retain NLL, as two weighted means.

The TOFU ``idk`` baseline takes one token mean over refusal and retain rows together (``idk``);
here the two parts are averaged separately and weighted like GradDiff
(``forget_coeff·NLL_idk + retain_coeff·NLL_R``), the form the later literature and
open-unlearning's trainers use, so the retain weight is a knob of its own.
"""

from __future__ import annotations

import torch

from meow_engine.methods.base import Batch, LossContext, register
from meow_engine.methods.idk import RefusalMethod
from meow_engine.methods.losses import mean_nll


@register
class IdkNLL(RefusalMethod):
    name = "idk_nll"

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        i, r, p = batch["idk"], batch["retain"], self.params
        return p.forget_coeff * mean_nll(ctx.logits(i), i["labels"]) + p.retain_coeff * mean_nll(
            ctx.logits(r), r["labels"])
