"""The contract every unlearning method implements, and the registry that finds them by name.

A method is a loss over named batch *parts* built by the shared trainer (``meow_engine.training``):

* ``forget``: the rows passed as ``forget_rows`` (the true forget answers for the baselines; the
  selected inverted answers for MEOW; the facts to learn for ``sft``);
* ``retain``: rows drawn from ``retain_rows`` (methods with ``needs_retain``);
* ``idk``: each forget question paired with a refusal answer (IDK and the DPO family);
* ``alt``: each forget question paired with one of its alternate (wrong) answers (AltPO).

The trainer asks a method for its ``parts``, builds aligned, question-masked batches for them and
calls ``loss(ctx, batch)`` once per micro-batch. ``ctx`` gives the policy forward and, for methods
with ``needs_reference``, the frozen reference (the base with the LoRA adapter disabled, or a
frozen copy when finetuning all weights): its logits, or any function run on it (RMU reads a
layer's activations). Name, flags and the pydantic ``Params`` of a method are declared once in the
torch-free ``catalog``; ``register`` copies them onto the class, so the CLI, the API and
``unlearn()`` all reject bad parameters the same way before any expensive stage runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch

from meow_engine.methods.catalog import CATALOG, MethodParams
from meow_engine.registry import Registry

Part = dict[str, torch.Tensor]
Batch = dict[str, Part]
T = TypeVar("T")

__all__ = ["METHODS", "Batch", "LossContext", "MethodParams", "Part", "UnlearningMethod", "make_method", "register"]


@dataclass
class LossContext:
    """What a loss may touch: the policy being trained and, if needed, the frozen reference.

    ``reference`` maps a part to reference logits; ``run_reference(fn)`` calls ``fn(module)`` on
    the reference network (in eval mode, without gradients) for anything beyond logits. The trainer
    sets both; a test may set either.
    """

    model: torch.nn.Module
    reference: Callable[[Part], torch.Tensor] | None = None
    run_reference: Callable[[Callable[[torch.nn.Module], Any]], Any] | None = None

    def logits(self, part: Part) -> torch.Tensor:
        """Policy logits in fp32 (losses are computed in fp32 even under bf16 autocast)."""
        out = self.model(input_ids=part["input_ids"], attention_mask=part["attention_mask"], use_cache=False)
        return out.logits.float()

    def reference_logits(self, part: Part) -> torch.Tensor:
        if self.reference is None:
            if self.run_reference is None:
                raise RuntimeError("this method needs a reference model but the trainer gave none")
            return self.with_reference(lambda m: m(input_ids=part["input_ids"], attention_mask=part["attention_mask"],
                                                   use_cache=False).logits).float()
        with torch.no_grad():
            return self.reference(part).float()

    def with_reference(self, fn: Callable[[torch.nn.Module], T]) -> T:
        if self.run_reference is None:
            raise RuntimeError("this method needs a reference model but the trainer gave none")
        with torch.no_grad():
            return self.run_reference(fn)


class UnlearningMethod:
    """Base class: subclasses set ``name`` (a catalog entry) and implement ``loss``."""

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

    def begin_step(self, step: int, total: int) -> None:
        """Called before optimizer step ``step`` (1-based) of ``total``; stateful methods (PDU) use it."""

    def refusals(self) -> list[str]:
        """Refusal answers for the ``idk`` part (only methods that use it override this)."""
        raise NotImplementedError(f"method {self.name!r} has no refusal answers")

    def alternates(self, forget: Sequence[tuple[str, str]], retain: Sequence[tuple[str, str]]) -> list[list[str]]:
        """Alternate answers per forget (question, answer) for the ``alt`` part (AltPO overrides this)."""
        raise NotImplementedError(f"method {self.name!r} has no alternate answers")


class MethodRegistry(Registry[type[UnlearningMethod]]):
    """The method registry: lookups accept the catalog's aliases (open-unlearning's names).

    Every lookup first makes sure all method modules are imported (the package imports them
    lazily), so code that reaches the registry through ``methods.base`` alone — the trainer —
    finds every method too.
    """

    _loaded = False

    def _ensure_loaded(self) -> None:
        if not MethodRegistry._loaded:
            MethodRegistry._loaded = True
            importlib.import_module("meow_engine.methods")._load()

    def get(self, name: str) -> type[UnlearningMethod]:
        self._ensure_loaded()
        return super().get(CATALOG.canonical(name))

    def names(self) -> list[str]:
        self._ensure_loaded()
        return super().names()

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return isinstance(name, str) and name in CATALOG and super().__contains__(CATALOG.canonical(name))

    def __iter__(self) -> Iterator[str]:
        self._ensure_loaded()
        return super().__iter__()


METHODS = MethodRegistry("unlearning method")

M = TypeVar("M", bound=type[UnlearningMethod])


def register(cls: M) -> M:
    """Register a method class under ``cls.name``, taking flags and Params from its catalog entry."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    spec = CATALOG.spec(cls.name)
    cls.description = spec.description
    cls.uses_inversions = spec.uses_inversions
    cls.needs_retain = spec.needs_retain
    cls.needs_reference = spec.needs_reference
    cls.parts = spec.parts
    cls.Params = spec.params
    METHODS.register(cls.name)(cls)
    return cls


def make_method(name: str, params: dict[str, Any] | None = None) -> UnlearningMethod:
    """Look a method up by name or alias and validate its parameters (ConfigError on either problem)."""
    return METHODS.get(name)(params)
