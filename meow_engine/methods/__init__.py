"""Unlearning methods: MEOW and the baselines it is compared against, one module each.

``METHODS.get(name)`` gives the class; ``make_method(name, params)`` an instance with validated
parameters. All run in the shared trainer (``meow_engine.training.finetune``).

| name | loss | retain | reference |
|---|---|---|---|
| ``meow`` | NLL of MEMO-selected inverted answers | – | – |
| ``sft`` | NLL of the rows (make target models) | – | – |
| ``ga`` | −NLL_F | – | – |
| ``gd`` | −NLL_F + NLL_R | ✓ | – |
| ``kl`` | −NLL_F + KL(p_ref ‖ p_θ) on retain | ✓ | ✓ |
| ``npo`` | −(2/β)·log σ(β(NLL_θ − NLL_ref)), β = 0.1 | – | ✓ |
| ``npo_gd`` | NPO + NLL_R | ✓ | ✓ |
| ``idk`` | NLL of refusals to forget questions + NLL_R | ✓ | – |
| ``dpo`` | −(2/β)·log σ(βΔ), refusal ≻ forget answer, β = 0.1 | – | ✓ |
| ``simnpo`` | 0.125·SimNPO(β = 4.5) + NLL_R | ✓ | – |
"""

from meow_engine.methods import dpo, ga, gd, idk, kl, meow, npo, sft, simnpo  # noqa: F401  (registration)
from meow_engine.methods.base import (
    METHODS,
    Batch,
    LossContext,
    MethodParams,
    Part,
    UnlearningMethod,
    make_method,
    register,
)

__all__ = ["METHODS", "Batch", "LossContext", "MethodParams", "Part", "UnlearningMethod", "make_method", "register"]
