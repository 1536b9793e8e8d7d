"""IDK / preference optimisation (TOFU ``idk``): learn a refusal for each forget question.

TOFU concatenates the refusal rows and the retain rows into one batch and takes HF's loss, i.e. a
token mean over both; the same is computed here from two forwards (summed NLL over both parts
divided by their total answer-token count). ``idk_nll`` is the same idea as two separately
averaged, weighted terms.
"""

from __future__ import annotations

import torch

from meow_engine.methods.base import Batch, LossContext, UnlearningMethod, register
from meow_engine.methods.losses import sequence_nll
from meow_engine.methods.refusals import load_refusals


class RefusalMethod(UnlearningMethod):
    """A method with an ``idk`` part: loads its refusal answers once (``refusals_file`` or built-in)."""

    def __init__(self, params: dict | None = None) -> None:
        super().__init__(params)
        self._refusals = load_refusals(self.params.refusals_file)

    def refusals(self) -> list[str]:
        return self._refusals


@register
class IDK(RefusalMethod):
    name = "idk"

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        i, r = batch["idk"], batch["retain"]
        s_i, n_i = sequence_nll(ctx.logits(i), i["labels"])
        s_r, n_r = sequence_nll(ctx.logits(r), r["labels"])
        return (s_i.sum() + s_r.sum()) / (n_i.sum() + n_r.sum()).clamp_min(1)
