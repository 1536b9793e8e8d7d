"""Unlearning methods: MEOW, the TOFU baselines and open-unlearning's methods, one module each.

``METHODS.get(name)`` gives the class (meow's names, or open-unlearning's as aliases);
``make_method(name, params)`` an instance with validated parameters. All run in the shared trainer
(``meow_engine.training.finetune``). Names, flags and parameters are declared in the torch-free
``meow_engine.methods.catalog`` (``CATALOG.describe()`` lists them; ``meow methods`` prints them).

Importing this package is cheap and torch-free: the loss modules (and torch) load on first use of
``METHODS``/``make_method``/…, so ``from meow_engine.methods.catalog import CATALOG`` works in a
process that never imports torch (the API).

| name | alias | loss | retain | reference |
|---|---|---|---|---|
| ``meow`` | | NLL of MEMO-selected inverted answers | – | – |
| ``sft`` | | NLL of the rows (make target models) | – | – |
| ``ga`` | GradAscent | −NLL_F | – | – |
| ``gd`` | GradDiff | −NLL_F + NLL_R | ✓ | – |
| ``kl`` | | −NLL_F + KL(p_ref ‖ p_θ) on retain | ✓ | ✓ |
| ``npo`` | | −(2/β)·log σ(β(NLL_θ − NLL_ref)), β = 0.1 | – | ✓ |
| ``npo_gd`` | NPO | NPO + NLL_R | ✓ | ✓ |
| ``simnpo`` | SimNPO | 0.125·SimNPO(β = 4.5) + NLL_R | ✓ | – |
| ``idk`` | | NLL of refusals + NLL_R, one token mean (TOFU) | ✓ | – |
| ``idk_nll`` | IdkNLL | NLL of refusals + NLL_R, two means | ✓ | – |
| ``dpo`` | | DPO, refusal ≻ forget answer (TOFU) | – | ✓ |
| ``idk_dpo`` | IdkDPO | DPO + NLL_R | ✓ | ✓ |
| ``altpo`` | AltPO | DPO, alternate ≻ forget answer, + NLL_R | ✓ | ✓ |
| ``rmu`` | RMU | layer-L activations → random direction; retain activations kept | ✓ | ✓ |
| ``undial`` | UNDIAL | distil the reference with the true token's logit −β | – | ✓ |
| ``ce_u`` | CEU, CE-U | cross-entropy to the own distribution without the true token | – | – |
| ``satimp`` | SatImp | 0.1·weighted ascent p^5(1−p) + NLL_R | ✓ | – |
| ``wga`` | WGA | weighted ascent p^β + NLL_R | ✓ | – |
| ``pdu`` | PDU | logit-margin flattening + λ(NLL_R − ε), primal-dual | ✓ | – |
"""

from __future__ import annotations

import importlib
from typing import Any

from meow_engine.methods.catalog import CATALOG, MethodParams

#: one module per method family; importing a module registers its methods
METHOD_MODULES = ("meow", "sft", "ga", "gd", "kl", "npo", "simnpo", "idk", "idk_nll", "dpo", "idk_dpo", "altpo",
                  "rmu", "undial", "ce_u", "satimp", "wga", "pdu")
_FROM_BASE = ("METHODS", "Batch", "LossContext", "Part", "UnlearningMethod", "make_method", "register")

__all__ = ["CATALOG", "MethodParams", *_FROM_BASE]


def _load() -> Any:
    base = importlib.import_module("meow_engine.methods.base")
    for mod in METHOD_MODULES:
        importlib.import_module(f"meow_engine.methods.{mod}")
    missing = set(CATALOG.names()) - set(base.METHODS._items)
    if missing:
        raise RuntimeError(f"catalog entries without an implementation: {sorted(missing)}")
    return base


def __getattr__(name: str) -> Any:
    if name in _FROM_BASE:
        return getattr(_load(), name)
    raise AttributeError(f"module 'meow_engine.methods' has no attribute {name!r}")
