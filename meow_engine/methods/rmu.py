"""RMU (Li et al. 2024, WMDP; as open-unlearning's ``rmu.py``): scramble one layer's activations on forget.

With ``h`` the output of decoder layer L at the positions of answer tokens (label ≠ −100, TOFU
layout: the labelled positions themselves, as the reference masks them):

* forget: ``‖h_θ(x_f) − c·u‖²`` towards a fixed random direction ``u`` (uniform in [0, 1)^d
  normalised, drawn once per run) scaled by ``steering_coeff`` c;
* retain: ``‖h_θ(x_r) − h_ref(x_r)‖²`` (open-unlearning's ``EMBED_DIFF``), the frozen reference's
  activations of the same layer;

each a mean over hidden units, summed over tokens, divided by the sequence's token count, averaged
over sequences; total ``forget_coeff·forget + retain_coeff·retain``. All trainable parameters are
updated (open-unlearning's ``RMU.yaml`` ``trainable_params_regex: .*``; with LoRA: the adapter).
The activations come from a forward hook on the layer module, so the same code serves a LoRA
model (reference = adapter disabled, same modules) and a frozen full copy (its own modules).
"""

from __future__ import annotations

from typing import Any

import torch

from meow_engine.errors import ConfigError
from meow_engine.methods.base import Batch, LossContext, Part, UnlearningMethod, register

#: open-unlearning RMU.yaml ``module_regex: model\.layers\.7``
REFERENCE_LAYER = 7


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The stack of decoder blocks of a (possibly PEFT-wrapped) causal LM."""
    base: Any = model.get_base_model() if hasattr(model, "get_base_model") else model
    inners = [getattr(base, "model", None), getattr(base, "transformer", None), getattr(base, "gpt_neox", None),
              getattr(base, "base_model", None), base]
    for inner in inners:
        for attr in ("layers", "h", "blocks"):
            layers = getattr(inner, attr, None) if inner is not None else None
            if isinstance(layers, torch.nn.ModuleList):
                return layers
    raise ConfigError(f"rmu: cannot find the decoder layers of {type(base).__name__}")


def resolve_layer(n_layers: int, layer: int | None) -> int:
    if layer is None:
        return REFERENCE_LAYER if n_layers > REFERENCE_LAYER else n_layers // 2
    if layer >= n_layers:
        raise ConfigError(f"rmu: layer {layer} does not exist; the model has {n_layers} decoder layers "
                          f"(0..{n_layers - 1})")
    return layer


def layer_activations(model: torch.nn.Module, part: Part, layer: int) -> torch.Tensor:
    """Output of decoder layer ``layer`` for ``part`` (fp32, [B, T, d]), via a forward hook."""
    cache: list[torch.Tensor] = []

    def hook(_module: torch.nn.Module, _inputs: Any, output: Any) -> None:
        cache.append(output[0] if isinstance(output, tuple) else output)

    handle = decoder_layers(model)[layer].register_forward_hook(hook)
    try:
        model(input_ids=part["input_ids"], attention_mask=part["attention_mask"], use_cache=False)
    finally:
        handle.remove()
    return cache[0].float()


def activation_loss(h: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ_t mean_d (h − target)² over masked tokens / tokens per sequence, mean over sequences."""
    sq = (h - target).pow(2).mean(dim=-1) * mask
    return (sq.sum(dim=-1) / mask.sum(dim=-1).clamp_min(1)).mean()


@register
class RMU(UnlearningMethod):
    name = "rmu"

    def __init__(self, params: dict | None = None) -> None:
        super().__init__(params)
        self._direction: torch.Tensor | None = None

    def direction(self, dim: int) -> torch.Tensor:
        """c·u, drawn on first use and kept for the whole run."""
        if self._direction is None or self._direction.numel() != dim:
            u = torch.rand(dim, generator=torch.Generator().manual_seed(self.params.seed))
            self._direction = u / u.norm() * self.params.steering_coeff
        return self._direction

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        f, r, p = batch["forget"], batch["retain"], self.params
        layer = resolve_layer(len(decoder_layers(ctx.model)), p.layer)
        h_f = layer_activations(ctx.model, f, layer)
        target = self.direction(h_f.shape[-1]).to(h_f.device).expand_as(h_f)
        forget = activation_loss(h_f, target, (f["labels"] != -100).float())
        h_r = layer_activations(ctx.model, r, layer)
        h_ref = ctx.with_reference(lambda m: layer_activations(m, r, layer))
        retain = activation_loss(h_r, h_ref.to(h_r.device), (r["labels"] != -100).float())
        return p.forget_coeff * forget + p.retain_coeff * retain
