"""Typed settings for every engine stage.

These pydantic models are the single source of truth for parameters and their limits: the CLI
builds them from flags, the service validates request bodies with them (so an API 422 and a CLI
error say the same thing), and results record them verbatim.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
    engine: Literal["batched", "reference"] = "batched"
    batch_size: int | None = Field(None, ge=1, le=4096, description="windows per forward; None adapts to memory")
    parity: bool = Field(False, description="decode like the reference (special tokens kept, str.replace)")


class FinetuneConfig(_Strict):
    mode: Literal["lora", "full"] = "lora"
    epochs: float = Field(10, gt=0, le=1000)
    max_steps: int | None = Field(None, ge=1)
    lr: float | None = Field(None, gt=0, le=1.0, description="None: 1e-4 for LoRA, 1e-5 for full")
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

    def effective_lr(self) -> float:
        if self.lr is not None:
            return self.lr
        return 1e-4 if self.mode == "lora" else 1e-5


class UnlearnConfig(_Strict):
    method: str = Field("meow", description="unlearning method from the method registry")
    method_params: dict[str, Any] = Field(default_factory=dict, description="method-specific parameters")
    inverter: InverterConfig = Field(default_factory=InverterConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    memo: MemoConfig = Field(default_factory=MemoConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    prompt_format: Literal["auto", "chat", "tofu", "llama2"] = "auto"
    audit: bool = Field(True, description="measure MEMO/ROUGE before and after")
