"""Result records returned by the engine (and stored by the service as JSON).

Pydantic models so the service can embed them in its OpenAPI schema and SDK users get typed
results; every number the pipeline measures lands here, nothing is printed-only.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class FactMemo(BaseModel):
    index: int
    id: str | None = None
    question: str
    text: str = Field(description="the scored text (the answer in suffix mode)")
    memo: float
    n_windows: int
    windows: list[float] | None = Field(None, description="per-window ROUGE-1 precision")


class MemoResult(BaseModel):
    mean: float
    mode: str
    engine: str
    facts: list[FactMemo]
    seconds: float
    windows_total: int


class Inversion(BaseModel):
    text: str
    memo: float | None = None
    selected: bool = False
    rank: int | None = Field(None, description="rank among candidates by the selection order (1 = first)")


class FactReport(BaseModel):
    index: int
    id: str | None = None
    question: str
    answer: str
    memo_before: float | None = None
    memo_after: float | None = None
    rougeL_before: float | None = None
    rougeL_after: float | None = None
    generation_before: str | None = None
    generation_after: str | None = None
    inversions: list[Inversion] = Field(default_factory=list)
    inverter_raw: str | None = Field(None, description="raw inverter response for audit")
    flags: list[str] = Field(default_factory=list)


class SetSummary(BaseModel):
    n_facts: int
    memo_before: float | None = None
    memo_after: float | None = None
    rougeL_before: float | None = None
    rougeL_after: float | None = None


class ArtifactInfo(BaseModel):
    kind: str = Field(description="lora | full")
    path: str
    base_model: str
    rank: int | None = None
    alpha: int | None = None
    target_modules: list[str] | None = None
    files: dict[str, str] = Field(default_factory=dict, description="file name -> sha256")
    size_bytes: int = 0


class UnlearnResult(BaseModel):
    method: str
    model: str
    forget: SetSummary
    retain: SetSummary | None = None
    facts: list[FactReport]
    report: dict[str, Any] = Field(default_factory=dict, description="oracle-free forgetting report")
    training: dict[str, Any] = Field(default_factory=dict, description="steps, losses, stopped")
    artifact: ArtifactInfo | None = None
    output_dir: str | None = None
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per stage")
    config: dict[str, Any] = Field(default_factory=dict)
