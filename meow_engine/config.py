"""Typed settings for every engine stage.

These pydantic models are the single source of truth for parameters and their limits: the CLI
builds them from flags, the service validates request bodies with them (so an API 422 and a CLI
error say the same thing), and results record them verbatim.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: below this many parameters a model counts as "small" for the default learning rates
SMALL_MODEL_PARAMS = 50_000_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InverterConfig(_Strict):
    kind: str = Field("rule", description="inverter plug-in: rule | openai | hf | given")
    n: int = Field(4, ge=1, le=32, description="inverted candidates per fact")
    seed: int = 0
    # openai-compatible endpoint
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")
    model: str | None = Field(None, description="model name at the endpoint, or the local HF model for 'hf'")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the API key")
    temperature: float = Field(0.9, ge=0.0, le=2.0)
    max_tokens: int = Field(512, ge=16, le=4096)
    timeout_s: float = Field(60.0, gt=0, le=600)
    max_concurrency: int = Field(4, ge=1, le=64)
    max_retries: int = Field(4, ge=0, le=10)
    retry_wait_s: float = Field(1.0, ge=0, le=60, description="base of the exponential backoff between retries")
    prompt: str | None = Field(None, description="system prompt override; {N} is replaced by n")
    # given
    candidates: list[list[str]] | None = Field(None, description="'given': candidates per fact, in fact order")


class SelectionConfig(_Strict):
    k: int = Field(3, ge=1, le=32)
    order: Literal["largest", "smallest", "random"] = "largest"
    rows_per_qa: int = Field(4, ge=1, le=64)
    seed: int = 42
    compat: Literal["clean", "reference"] = "clean"

    @model_validator(mode="after")
    def _k_fits_rows(self) -> SelectionConfig:
        if self.k > self.rows_per_qa:
            raise ValueError(f"selection.k ({self.k}) must not exceed rows_per_qa ({self.rows_per_qa})")
        return self


class MemoConfig(_Strict):
    mode: Literal["suffix", "prefix"] = "suffix"
    stride: int = Field(5, ge=1, le=100)
    max_new_tokens: int = Field(200, ge=1, le=1024)
    engine: Literal["speculative", "batched", "reference"] = Field(
        "speculative", description="speculative: batched, drafting each window from its own text (exact, fastest)")
    batch_size: int | None = Field(None, ge=1, le=4096, description="windows per forward; None adapts to memory")
    parity: bool = Field(False, description="decode like the reference (special tokens kept, str.replace)")


class FinetuneConfig(_Strict):
    mode: Literal["lora", "full"] = "lora"
    epochs: float = Field(10, gt=0, le=1000)
    max_steps: int | None = Field(None, ge=1, le=100_000, description="cap on optimiser steps (None: epochs decide)")
    lr: float | None = Field(None, gt=0, le=1.0, description="None: by mode and model size (LoRA 3e-4, full 2e-5; "
                             "LoRA 3e-3, full 3e-4 under 50M parameters)")
    batch_size: int = Field(4, ge=1, le=512)
    grad_accum: int = Field(1, ge=1, le=512)
    weight_decay: float = Field(0.01, ge=0, le=1)
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    max_length: int = Field(200, ge=8, le=8192)
    seed: int = 42
    lora_rank: int = Field(8, ge=1, le=512)
    lora_alpha: int = Field(16, ge=1, le=1024)
    lora_dropout: float = Field(0.0, ge=0, le=0.9)
    target_modules: list[str] | None = Field(None, description="None: every linear layer of the blocks")
    bf16: Literal["auto", "on", "off"] = "auto"

    def effective_lr(self, n_params: int | None = None) -> float:
        """The lr given, else a default by mode and model size (``SMALL_MODEL_PARAMS``).

        Small models need a larger step to move a memorised fact within a few rounds; the
        verify-until-forgotten loop escalates from here when a round fixes no leak.
        """
        if self.lr is not None:
            return self.lr
        small = n_params is not None and n_params < SMALL_MODEL_PARAMS
        if self.mode == "lora":
            return 3e-3 if small else 3e-4
        return 3e-4 if small else 2e-5


class LeakAuditConfig(_Strict):
    """The probes behind a verdict: one prompt is never enough evidence (docs/forgetting.md)."""

    enabled: bool = Field(True, description="run the leakage audit before and after (and between rounds)")
    paraphrases: int = Field(2, ge=0, le=16, description="engine-made rephrasings when a fact gives none")
    extraction_prefixes: list[str] = Field(
        default_factory=lambda: ["Sure, here is the answer:"], max_length=8,
        description="answer openings the model is made to continue (extraction probes)")
    samples: int = Field(4, ge=0, le=64, description="answers sampled at `temperature` per forget fact")
    temperature: float = Field(1.0, gt=0, le=2.0)
    max_new_tokens: int = Field(64, ge=4, le=1024)
    raw_prompt: bool = Field(True, description="also probe with the bare question text (no prompt format)")
    seed: int = 0


class TargetConfig(_Strict):
    """When a job counts as done: the finetune runs in rounds until this holds or the budget ends."""

    enabled: bool = Field(True, description="train in rounds until the target holds (False: one fixed run)")
    max_forget_leak_rate: float = Field(0.0, ge=0, le=1, description="share of forget probes allowed to leak")
    min_retain_kept: float = Field(0.95, ge=0, le=1,
                                   description="retain probes still saying their spans, relative to before")
    round_epochs: float = Field(1.0, gt=0, le=100, description="training between two audits, in epochs")
    max_rounds: int = Field(20, ge=1, le=200, description="budget in rounds (finetune.max_steps also caps it)")
    lr_growth: float = Field(2.0, ge=1.0, le=10.0,
                             description="lr factor after a round in which no leaking probe was fixed")
    max_backoffs: int = Field(3, ge=0, le=20,
                              description="rounds retried at half the lr after crossing the retain floor")
    max_lr_factor: float = Field(8.0, ge=1.0, le=1000.0, description="cap on the escalated lr / starting lr")


class UnlearnConfig(_Strict):
    method: str = Field("meow", description="unlearning method from the method registry")
    method_params: dict[str, Any] = Field(default_factory=dict, description="method-specific parameters")
    inverter: InverterConfig = Field(default_factory=InverterConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    memo: MemoConfig = Field(default_factory=MemoConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    prompt_format: Literal["auto", "chat", "tofu", "llama2"] = "auto"
    audit: bool = Field(True, description="measure MEMO/ROUGE before and after")
    retain_anchor: float = Field(
        0.5, ge=0, le=4,
        description="MEOW: retain rows (true answers) mixed into training, per inverted row; 0 = the paper's "
                    "pure MEOW (no retain data). Keeps what the model should still say while it unlearns.")
    train_raw: bool = Field(True, description="MEOW: also train each selected inversion as bare 'question answer' "
                                              "text, the form MEMO scores and the raw leak probe asks in")
    leak_audit: LeakAuditConfig = Field(default_factory=LeakAuditConfig)
    target: TargetConfig = Field(default_factory=TargetConfig)
