"""AltPO (Mekala et al. 2024): prefer a plausible alternate answer over the forget answer, keep retain.

``L = forget_coeff·(−(2/β)·log σ(β·Δ)) + retain_coeff·NLL_R``, Δ = summed log-prob ratio (policy vs
frozen reference) of an alternate answer minus that of the true forget answer — open-unlearning
runs AltPO as its ``DPO`` trainer with the alternates as the preferred side
(``community/methods/AltPO/run.sh``), defaults from ``configs/trainer/DPO.yaml``.

Alternates: AltPO samples them from the target model with a few-shot prompt
(``community/methods/AltPO/generate.py``); meow makes them with its offline ``rule`` inverter
(counter-factual swaps of the answer's key spans, the retain facts as the replacement pool), so
no generation step and no endpoint are needed. That is a labelled deviation: the alternates are
counter-factuals of the same kind MEOW trains on, not the model's own samples. Each micro-batch
row draws one of its fact's ``n_alternates`` candidates at random (seeded). A fact the inverter
cannot invert (no span to swap, e.g. "Yes.") gets meow's built-in refusal answers as its
alternates instead, i.e. IdkDPO for that fact, rather than failing the whole run.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from meow_engine.methods.base import Batch, LossContext, UnlearningMethod, register
from meow_engine.methods.dpo import preference_nlls
from meow_engine.methods.losses import dpo_loss, mean_nll
from meow_engine.methods.refusals import REFUSALS


@register
class AltPO(UnlearningMethod):
    name = "altpo"

    def alternates(self, forget: Sequence[tuple[str, str]], retain: Sequence[tuple[str, str]]) -> list[list[str]]:
        from meow_engine.config import InverterConfig
        from meow_engine.facts import Fact
        from meow_engine.inverters import invert

        p = self.params
        sets = invert([Fact(q, a) for q, a in forget], InverterConfig(kind="rule", n=p.n_alternates, seed=p.seed),
                      context_facts=[Fact(q, a) for q, a in retain])
        return [list(s.candidates) or list(REFUSALS) for s in sets]

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        p, r = self.params, batch["retain"]
        pref = dpo_loss(*preference_nlls(ctx, batch["alt"], batch["forget"]), beta=p.beta)
        return p.forget_coeff * pref + p.retain_coeff * mean_nll(ctx.logits(r), r["labels"])
