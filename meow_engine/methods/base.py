"""The contract every unlearning method implements, and the registry that finds them by name.

A method is a loss over named batch *parts* built by the shared trainer (``meow_engine.training``):

* ``forget``: the rows passed as ``forget_rows`` (the true forget answers for the baselines; the
  selected inverted answers for MEOW; the facts to learn for ``sft``);
* ``retain``: rows drawn from ``retain_rows`` (methods with ``needs_retain``);
* ``idk``: each forget question paired with a refusal answer (IDK and DPO).

The trainer asks a method for its ``parts``, builds aligned, question-masked batches for them and
calls ``loss(ctx, batch)`` once per micro-batch. ``ctx`` gives the policy forward and, for methods
with ``needs_reference``, the frozen reference's logits (the base with the LoRA adapter disabled,
or a frozen copy when finetuning all weights). Method parameters are validated by a pydantic
``Params`` model that raises ``ConfigError`` with one readable line, so the CLI, the API and
``unlearn()`` all reject bad parameters the same way before any expensive stage runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from meow_engine.errors import ConfigError
from meow_engine.registry import Registry

Part = dict[str, torch.Tensor]
Batch = dict[str, Part]

__all__ = ["METHODS", "Batch", "LossContext", "MethodParams", "Part", "UnlearningMethod", "make_method", "register"]


class MethodParams(BaseModel):
    """Base for per-method parameters: unknown keys and out-of-range values are ConfigErrors."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    method_name: ClassVar[str] = "method"

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise ConfigError(_describe(type(self), e)) from None


def _describe(params_cls: type[MethodParams], err: ValidationError) -> str:
    known = ", ".join(sorted(params_cls.model_fields)) or "none"
    parts = []
    for item in err.errors():
        name = ".".join(str(x) for x in item["loc"]) or "params"
        if item["type"] == "extra_forbidden":
            parts.append(f"unknown parameter {name!r} (known: {known})")
        else:
            parts.append(f"{name}: {item['msg']}")
    return f"method {params_cls.method_name!r}: " + "; ".join(parts)


@dataclass
class LossContext:
    """What a loss may touch: the policy being trained and, if needed, the frozen reference."""

    model: torch.nn.Module
    reference: Callable[[Part], torch.Tensor] | None = None

    def logits(self, part: Part) -> torch.Tensor:
        """Policy logits in fp32 (losses are computed in fp32 even under bf16 autocast)."""
        out = self.model(input_ids=part["input_ids"], attention_mask=part["attention_mask"], use_cache=False)
        return out.logits.float()

    def reference_logits(self, part: Part) -> torch.Tensor:
        if self.reference is None:
            raise RuntimeError("this method needs a reference model but the trainer gave none")
        with torch.no_grad():
            return self.reference(part).float()


class UnlearningMethod:
    """Base class: subclasses set the class attributes, a ``Params`` model and ``loss``."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: trains on MEMO-selected inverted answers (the pipeline runs invert → MEMO → select first)
    uses_inversions: ClassVar[bool] = False
    needs_retain: ClassVar[bool] = False
    needs_reference: ClassVar[bool] = False
    #: batch parts the trainer must build, see the module docstring
    parts: ClassVar[tuple[str, ...]] = ("forget",)
    Params: ClassVar[type[MethodParams]] = MethodParams

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.params = self.Params(**(params or {}))

    def loss(self, ctx: LossContext, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def refusals(self) -> list[str]:
        """Refusal answers for the ``idk`` part (only methods that use it override this)."""
        raise NotImplementedError(f"method {self.name!r} has no refusal answers")


METHODS: Registry[type[UnlearningMethod]] = Registry("unlearning method")

M = TypeVar("M", bound=type[UnlearningMethod])


def register(cls: M) -> M:
    """Register a method class under ``cls.name``; its Params learn the name for error messages."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.needs_retain != ("retain" in cls.parts):
        raise ValueError(f"{cls.__name__}: needs_retain disagrees with parts {cls.parts}")
    cls.Params = type(f"{cls.__name__}Params", (cls.Params,), {"method_name": cls.name})  # type: ignore[misc]
    METHODS.register(cls.name)(cls)
    return cls


def make_method(name: str, params: dict[str, Any] | None = None) -> UnlearningMethod:
    """Look a method up by name and validate its parameters (ConfigError on either problem)."""
    return METHODS.get(name)(params)
