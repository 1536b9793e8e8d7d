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


class SpanInfo(BaseModel):
    text: str
    kind: str
    source: str = Field(description="given (the request named it) | detected (meow found it)")


class ProbeOutcome(BaseModel):
    """One leak probe of a fact: what was asked, what the model said before and after."""

    kind: str = Field(description="question | paraphrase | rephrasing | extraction | raw | sample")
    prompt: str
    sample: int | None = None
    before: str | None = None
    after: str | None = None
    leaked_before: list[str] = Field(default_factory=list, description="sensitive spans said before")
    leaked_after: list[str] = Field(default_factory=list, description="sensitive spans said after")


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
    spans: list[SpanInfo] = Field(default_factory=list, description="the sensitive spans the audit checks")
    probes: list[ProbeOutcome] = Field(default_factory=list, description="the leak table of this fact")
    leaks_before: int | None = Field(None, description="probes that said a sensitive span before")
    leaks_after: int | None = Field(None, description="probes that said a sensitive span after")
    verdict: str | None = Field(None, description="forgotten | partial | not_forgotten")
    verdict_reason: str | None = None
    uninvertible: str | None = Field(None, description="why the fact was not trained on (too few valid inversions)")


class SetSummary(BaseModel):
    n_facts: int
    memo_before: float | None = None
    memo_after: float | None = None
    rougeL_before: float | None = None
    rougeL_after: float | None = None
    leak_rate_before: float | None = Field(None, description="share of probes saying a sensitive span, before")
    leak_rate_after: float | None = Field(None, description="share of probes saying a sensitive span, after")
    kept: float | None = Field(None, description="retain: share of probes that said their spans and still do")


class RoundRecord(BaseModel):
    """One audit between two training rounds."""

    step: int
    lr: float
    forget_leak_rate: float | None
    retain_kept: float | None
    leaking_probes: int
    decision: str = Field(description="continue | escalate | stop: target | stop: retain floor (rolled back)")


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
    verdict: str | None = Field(None, description="forgotten | partial | not_forgotten: the worst of the facts")
    verdict_reason: str | None = None
    target_met: bool | None = Field(None, description="forget leak rate and retain kept both within the target")
    rounds: list[RoundRecord] = Field(default_factory=list, description="audits between training rounds")
    forget: SetSummary
    retain: SetSummary | None = None
    facts: list[FactReport]
    report: dict[str, Any] = Field(default_factory=dict, description="oracle-free forgetting report")
    training: dict[str, Any] = Field(default_factory=dict, description="steps, losses, stopped")
    artifact: ArtifactInfo | None = None
    output_dir: str | None = None
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per stage")
    config: dict[str, Any] = Field(default_factory=dict)
