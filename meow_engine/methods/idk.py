"""IDK / preference optimisation (TOFU ``idk``): learn a refusal for each forget question.

TOFU concatenates the refusal rows and the retain rows into one batch and takes HF's loss, i.e. a
token mean over both; the same is computed here from two forwards (summed NLL over both parts
divided by their total answer-token count).
"""

from __future__ import annotations

import torch
from pydantic import Field

from meow_engine.methods.base import Batch, LossContext, MethodParams, UnlearningMethod, register
from meow_engine.methods.losses import sequence_nll
from meow_engine.methods.refusals import load_refusals


class RefusalParams(MethodParams):
    refusals_file: str | None = Field(None, description="one refusal answer per line; None: built-in list")


@register
class IDK(UnlearningMethod):
    name = "idk"
    description = "NLL of refusal answers to forget questions + NLL_R (one token mean)"
    needs_retain = True
    parts = ("idk", "retain")
    Params = RefusalParams

    def __init__(self, params: dict | None = None) -> None:
        super().__init__(params)
        self._refusals = load_refusals(self.params.refusals_file)

    def refusals(self) -> list[str]:
        return self._refusals

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        i, r = batch["idk"], batch["retain"]
        s_i, n_i = sequence_nll(ctx.logits(i), i["labels"])
        s_r, n_r = sequence_nll(ctx.logits(r), r["labels"])
        return (s_i.sum() + s_r.sum()) / (n_i.sum() + n_r.sum()).clamp_min(1)
