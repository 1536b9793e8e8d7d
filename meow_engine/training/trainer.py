"""The one finetuning loop behind MEOW, every baseline and ``meow train``.

A plain PyTorch loop rather than HF ``Trainer``: the methods need several aligned batch parts and
a reference forward per step, the worker needs a progress callback and a cooperative stop after
every optimizer step, and the loop stays small enough to read. It reproduces the reference's
``TrainingArguments`` where they matter: AdamW, linear warm-up then linear decay, gradient
clipping at 1.0 (HF default), micro-batch losses averaged over gradient accumulation, bf16 autocast.

**Model ownership.** ``finetune`` trains ``lm.model`` *in place* by default: full mode updates its
weights; LoRA mode injects adapter layers into its modules (peft) and returns the ``PeftModel``
wrapping it, so ``lm.model`` itself then computes adapted outputs too (``result.model.unload()``
strips the adapter again). Pass ``inplace=False`` to train a deep copy instead (one more model in
memory). ``result.lm`` is ``lm`` with ``model`` replaced by the trained model.

**Reference model** (KL, NPO, DPO, RMU, UNDIAL, …): with LoRA it is the same network with the adapter disabled
(no second copy, one extra forward); with full finetuning it is a frozen deep copy taken before the
first step, which costs one more model's weights in memory.

**Stopping.** ``reporter.check_stop()`` is polled before every optimizer step; a stop request ends
the loop cleanly and returns ``FinetuneResult(stopped=True, artifact=None)`` — nothing is saved,
the caller decides what a half-trained model is worth. The model is left in eval mode either way.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from meow_engine.config import FinetuneConfig
from meow_engine.errors import ConfigError, StopRequested, TrainingError
from meow_engine.methods.base import LossContext, Part, UnlearningMethod, make_method
from meow_engine.models import LoadedModel
from meow_engine.progress import NULL_REPORTER, Reporter
from meow_engine.results import ArtifactInfo
from meow_engine.training.artifacts import save_full, save_lora
from meow_engine.training.data import BatchStream, TrainRow

__all__ = ["FinetuneResult", "RoundDecision", "RoundHook", "finetune", "plan_steps", "save_artifact", "use_bf16"]

#: HF TrainingArguments' default, which the reference runs with.
MAX_GRAD_NORM = 1.0


@dataclass(frozen=True)
class RoundDecision:
    """What a between-rounds check tells the loop: stop now, or go on with the lr scaled."""

    stop: bool = False
    lr_scale: float = 1.0


#: (optimizer steps done, the model in eval mode) -> decision; runs under no_grad
RoundHook = Callable[[int, Any], RoundDecision]


@dataclass
class FinetuneResult:
    steps: int
    total_steps: int
    losses: list[float]
    seconds: float
    stopped: bool
    artifact: ArtifactInfo | None
    #: the trained model in eval mode (the PeftModel for LoRA)
    model: Any
    #: ``lm`` with ``model`` replaced by the trained model
    lm: LoadedModel
    method: str
    method_params: dict[str, Any] = field(default_factory=dict)
    bf16: bool = False
    learning_rates: list[float] = field(default_factory=list)


def plan_steps(n_rows: int, config: FinetuneConfig) -> int:
    """Optimizer steps: ``max_steps`` if set, else ⌈epochs·N / (batch·accum)⌉ (at least 1)."""
    if config.max_steps is not None:
        return config.max_steps
    return max(1, math.ceil(config.epochs * n_rows / (config.batch_size * config.grad_accum)))


def use_bf16(config: FinetuneConfig, device: torch.device) -> bool:
    """auto: bf16 autocast on a CUDA GPU that supports it, fp32 elsewhere; on/off force it."""
    if config.bf16 == "off":
        return False
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if config.bf16 == "auto":
        return cuda_bf16
    if device.type == "cuda" and not cuda_bf16:
        raise ConfigError("finetune.bf16 is 'on' but this GPU has no bf16 support")
    return True


def _lora_wrap(model: Any, config: FinetuneConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        # "all-linear": every nn.Linear in the blocks, output layer excluded, for any architecture.
        target_modules=list(config.target_modules) if config.target_modules else "all-linear",
        task_type="CAUSAL_LM", bias="none",
    )
    try:
        return get_peft_model(model, lora)
    except ValueError as e:
        raise ConfigError(f"LoRA: {str(e).splitlines()[0]}") from None


def _optimizer(model: torch.nn.Module, config: FinetuneConfig) -> torch.optim.Optimizer:
    # Decay matrices only (biases and norm weights are 1-D), as HF Trainer does.
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    if not decay and not no_decay:
        raise ConfigError("no trainable parameters")
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    on_gpu = all(p.is_cuda for g in groups for p in g["params"])
    lr = config.effective_lr(sum(p.numel() for p in model.parameters()))
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, fused=on_gpu or None)


def _lora_reference(model: Any) -> Callable[[Callable[[torch.nn.Module], Any]], Any]:
    """Run ``fn`` on the same network with the adapter disabled: the reference costs no memory."""

    def run(fn: Callable[[torch.nn.Module], Any]) -> Any:
        was_training = model.training
        model.eval()  # no dropout in the reference forward
        try:
            with model.disable_adapter():
                return fn(model)
        finally:
            model.train(was_training)

    return run


def _frozen_reference(model: torch.nn.Module) -> Callable[[Callable[[torch.nn.Module], Any]], Any]:
    """Run ``fn`` on a frozen copy taken now (full finetuning changes the weights themselves)."""
    frozen = copy.deepcopy(model).eval().requires_grad_(False)

    def run(fn: Callable[[torch.nn.Module], Any]) -> Any:
        return fn(frozen)

    return run


def _reference_logits(run: Callable[[Callable[[torch.nn.Module], Any]], Any]) -> Callable[[Part], torch.Tensor]:
    def reference(part: Part) -> torch.Tensor:
        return run(lambda m: m(input_ids=part["input_ids"], attention_mask=part["attention_mask"],
                               use_cache=False).logits)

    return reference


def _to(part: Part, device: torch.device) -> Part:
    return {k: v.to(device, non_blocking=True) for k, v in part.items()}


def finetune(
    lm: LoadedModel,
    forget_rows: Sequence[TrainRow],
    config: FinetuneConfig,
    *,
    method: str = "meow",
    method_params: dict[str, Any] | None = None,
    retain_rows: Sequence[TrainRow] | None = None,
    output_dir: str | Path | None = None,
    reporter: Reporter | None = None,
    inplace: bool = True,
    round_steps: int | None = None,
    between_rounds: RoundHook | None = None,
) -> FinetuneResult:
    """Train ``lm`` with ``method`` on ``forget_rows`` (+ ``retain_rows``); save to ``output_dir``.

    ``forget_rows`` are the rows the method's ``forget`` part is built from: the selected inverted
    rows for MEOW, the true forget answers for the baselines, the facts to learn for ``sft``.
    Raises ConfigError for bad settings (unknown method, bad parameters, missing retain rows).
    With ``between_rounds``, the hook runs every ``round_steps`` optimizer steps (not after the
    last one: the caller audits the final model anyway) and may stop training early or scale the lr;
    optimizer state and schedule carry on across rounds.
    """
    reporter = reporter or NULL_REPORTER
    m: UnlearningMethod = make_method(method, method_params)
    if m.needs_retain and not retain_rows:
        raise ConfigError(f"method {method!r} needs retain facts")
    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    stream = BatchStream(lm, m, forget_rows, retain_rows if m.needs_retain else None,
                         config.batch_size, config.max_length, config.seed)

    base = lm.model if inplace else copy.deepcopy(lm.model)
    if _is_peft(base):
        if config.mode == "lora":
            raise ConfigError("the model already carries a LoRA adapter; merge it first or finetune in full mode")
        base = base.merge_and_unload()  # full mode trains the merged weights
    if config.mode == "lora":
        model = _lora_wrap(base, config)
        reference = _lora_reference(model) if m.needs_reference else None
    else:
        reference = _frozen_reference(base) if m.needs_reference else None
        model = base.requires_grad_(True)
    device = lm.device
    model.to(device)
    bf16 = use_bf16(config, device)

    def autocast() -> contextlib.AbstractContextManager:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    total = plan_steps(len(forget_rows), config)
    optimizer = _optimizer(model, config)
    from transformers import get_linear_schedule_with_warmup

    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(config.warmup_ratio * total), total)
    ctx = LossContext(model=model, reference=_reference_logits(reference) if reference else None,
                      run_reference=reference)
    losses: list[float] = []
    lrs: list[float] = []
    stopped = False
    model.train()
    try:
        with torch.enable_grad():  # the caller may be inside no_grad/inference code
            _loop(m, ctx, iter(stream), optimizer, scheduler, config, total, reporter, autocast, device, losses, lrs,
                  round_steps, between_rounds)
    except StopRequested:
        stopped = True
    finally:
        optimizer.zero_grad(set_to_none=True)
        model.eval()
    del optimizer, scheduler
    seconds = time.perf_counter() - t0

    artifact = None
    if output_dir is not None and not stopped:
        artifact = save_artifact(model, lm, config, output_dir)
    return FinetuneResult(
        steps=len(losses), total_steps=total, losses=losses, seconds=round(seconds, 4), stopped=stopped,
        artifact=artifact, model=model, lm=replace(lm, model=model), method=method,
        method_params=m.params.model_dump(), bf16=bf16, learning_rates=lrs,
    )


def save_artifact(model: Any, lm: LoadedModel, config: FinetuneConfig, output_dir: str | Path) -> ArtifactInfo:
    """Save a trained model in the layout its mode calls for (adapter for LoRA, folder for full)."""
    base_ref = str(lm.path) if lm.path is not None else lm.ref
    if config.mode == "lora":
        return save_lora(model, output_dir, base_ref)
    return save_full(model, lm.tokenizer, output_dir, base_ref)


def _loop(m: UnlearningMethod, ctx: LossContext, batches: Iterator, optimizer: torch.optim.Optimizer,
          scheduler: Any, config: FinetuneConfig, total: int, reporter: Reporter,
          autocast: Callable[[], contextlib.AbstractContextManager], device: torch.device,
          losses: list[float], lrs: list[float], round_steps: int | None = None,
          between_rounds: RoundHook | None = None) -> None:
    """Optimizer steps 1..total; appends to ``losses``/``lrs`` as it goes so a stop keeps them."""
    params = [p for p in ctx.model.parameters() if p.requires_grad]
    if between_rounds is not None:  # step 0: lets the caller snapshot the untrained state
        between_rounds(0, ctx.model)
    for step in range(1, total + 1):
        reporter.check_stop()
        m.begin_step(step, total)
        optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        for _ in range(config.grad_accum):
            batch = {name: _to(part, device) for name, part in next(batches).items()}
            with autocast():
                loss = m.loss(ctx, batch) / config.grad_accum
            if not torch.isfinite(loss):
                raise TrainingError(f"{m.name}: the loss became {loss.item()} at step {step}; try a lower lr")
            loss.backward()
            step_loss += loss.item()
        if MAX_GRAD_NORM:
            torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
        losses.append(step_loss)
        reporter.emit("finetune", step, total, loss=step_loss)
        if between_rounds is not None and round_steps and step % round_steps == 0 and step < total:
            ctx.model.eval()
            with torch.no_grad():
                decision = between_rounds(step, ctx.model)
            ctx.model.train()
            if decision.stop:
                return
            if decision.lr_scale != 1.0:
                scheduler.base_lrs = [b * decision.lr_scale for b in scheduler.base_lrs]
                for group, lr in zip(optimizer.param_groups, scheduler.get_last_lr(), strict=True):
                    group["lr"] = lr * decision.lr_scale


def _is_peft(model: Any) -> bool:
    try:
        from peft import PeftModel
    except ModuleNotFoundError:  # pragma: no cover - peft is a dependency
        return False
    return isinstance(model, PeftModel)
