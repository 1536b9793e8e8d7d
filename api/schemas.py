"""Request and response bodies (the wire format SDKs are generated from).

Request bodies embed the engine's own pydantic configs (``InverterConfig``, ``SelectionConfig``,
``FinetuneConfig``, ``MemoConfig``), so the API rejects exactly what the CLI rejects, with the
same messages. Limits that depend on settings (fact counts, text length) are checked in the
routes and reported in the same problem shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from meow_engine.config import FinetuneConfig, InverterConfig, MemoConfig, SelectionConfig, UnlearnConfig
from meow_engine.results import FactReport, MemoResult, SetSummary
from service.catalog import INVERTER_KINDS, MethodName

Status = Literal["queued", "running", "cancelling", "cancelled", "succeeded", "failed", "crashed"]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"


def unix(ts: datetime | None) -> int | None:
    return None if ts is None else int(ts.timestamp())


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- models
class ModelCreate(_In):
    name: str = Field(pattern=NAME_PATTERN, description="unique name jobs refer to the model by")
    source: str = Field(min_length=1, max_length=1024, description=(
        "a built-in name (demo:tiny, smollm2-135m-instruct), a local folder under a configured model root, "
        "or a Hugging Face id (org/name)"))


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    name: str
    source: str
    source_kind: Literal["builtin", "path", "hub"]
    created_at: int


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]
    has_more: bool = False


# ---------------------------------------------------------------- facts
class FactIn(_In):
    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    id: str | None = Field(None, max_length=128, description="your id for the fact, echoed in results")

    @field_validator("question", "answer")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()


class FactSet(BaseModel):
    fact_count: int


class Progress(BaseModel):
    stage: str
    step: int
    total: int | None = None


class JobError(BaseModel):
    code: str = Field(description="user_* for caller faults (fix the request), others are ours")
    message: str


class _Times(BaseModel):
    created_at: int
    queued_at: int | None = None
    running_at: int | None = None
    cancelling_at: int | None = Field(None, description="when cancel was requested on a running job")
    cancelled_at: int | None = None
    succeeded_at: int | None = None
    failed_at: int | None = None
    crashed_at: int | None = None
    finished_at: int | None = None
    heartbeat_at: int | None = None


Metadata = dict[str, str]


def _check_metadata(v: Metadata) -> Metadata:
    if len(v) > 16:
        raise ValueError("at most 16 metadata keys")
    for k, val in v.items():
        if not 1 <= len(k) <= 64:
            raise ValueError(f"metadata key {k[:70]!r} must be 1-64 characters")
        if len(val) > 512:
            raise ValueError(f"metadata value of {k!r} is longer than 512 characters")
    return v


# ---------------------------------------------------------------- unlearn
class UnlearnCreate(_In):
    model: str = Field(description="model id (mdl_…) or name")
    facts: list[FactIn] = Field(min_length=1, description="facts to forget")
    retain_facts: list[FactIn] = Field(default_factory=list, description="facts to keep, used as utility probes")
    method: MethodName = "meow"
    method_params: dict[str, Any] = Field(default_factory=dict, description="method-specific parameters")
    inverter: InverterConfig = Field(default_factory=InverterConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    memo: MemoConfig = Field(default_factory=MemoConfig)
    prompt_format: Literal["auto", "chat", "tofu", "llama2"] = "auto"
    metadata: Metadata = Field(default_factory=dict, description="your string key/values, echoed back")

    _check_meta = field_validator("metadata")(classmethod(lambda cls, v: _check_metadata(v)))

    @model_validator(mode="after")
    def _consistent(self) -> UnlearnCreate:
        if self.inverter.kind not in INVERTER_KINDS:
            raise ValueError(f"inverter.kind must be one of {', '.join(INVERTER_KINDS)} (got {self.inverter.kind!r})")
        if self.inverter.kind == "given":
            cands = self.inverter.candidates or []
            if len(cands) != len(self.facts):
                raise ValueError(f"inverter.candidates must hold one list per fact ({len(self.facts)}), "
                                 f"got {len(cands)}")
        self.engine_config()  # cross-field checks the engine does itself
        return self

    def engine_config(self) -> UnlearnConfig:
        return UnlearnConfig(method=self.method, method_params=self.method_params, inverter=self.inverter,
                             selection=self.selection, finetune=self.finetune, memo=self.memo,
                             prompt_format=self.prompt_format)


class UnlearnResultOut(BaseModel):
    adapter_id: str | None = Field(None, description="the produced adapter (or full weights), see /v1/adapters")
    method: str
    forget: SetSummary
    retain: SetSummary | None = None
    facts: list[FactReport] = Field(description="per fact: MEMO/ROUGE before and after, inversions with MEMO")
    report: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)


class UnlearnJob(_Times):
    id: str
    object: Literal["unlearn.job"] = "unlearn.job"
    status: Status
    model: str = Field(description="model name at submission")
    model_id: str | None
    method: str
    params: dict[str, Any] = Field(description="effective inverter/selection/finetune/memo settings")
    forget_set: FactSet
    retain_set: FactSet
    progress: Progress | None = None
    result: UnlearnResultOut | None = None
    error: JobError | None = None
    attempt: int = 0
    metadata: Metadata = Field(default_factory=dict)


class UnlearnJobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[UnlearnJob]
    has_more: bool


# ---------------------------------------------------------------- memo
class MemoCreate(_In):
    model: str | None = Field(None, description="model id or name; optional when adapter is given")
    adapter: str | None = Field(None, description="adapter id to apply on top of its base model")
    facts: list[FactIn] = Field(min_length=1)
    mode: Literal["suffix", "prefix"] = "suffix"
    stride: int = Field(5, ge=1, le=100)
    max_new_tokens: int = Field(200, ge=1, le=1024)
    metadata: Metadata = Field(default_factory=dict)

    _check_meta = field_validator("metadata")(classmethod(lambda cls, v: _check_metadata(v)))

    @model_validator(mode="after")
    def _target(self) -> MemoCreate:
        if self.model is None and self.adapter is None:
            raise ValueError("give a model or an adapter")
        return self

    def engine_config(self) -> MemoConfig:
        return MemoConfig(mode=self.mode, stride=self.stride, max_new_tokens=self.max_new_tokens)


# The engine's MemoResult as is; its own name keeps the SDK type name stable (no docstring, so the
# OpenAPI schema stays exactly the engine's fields).
class MemoResultOut(MemoResult):
    pass


class MemoAudit(_Times):
    id: str
    object: Literal["memo.audit"] = "memo.audit"
    status: Status
    model: str
    model_id: str | None
    adapter_id: str | None = None
    params: dict[str, Any]
    fact_set: FactSet
    progress: Progress | None = None
    result: MemoResultOut | None = None
    error: JobError | None = None
    attempt: int = 0
    metadata: Metadata = Field(default_factory=dict)


class MemoAuditList(BaseModel):
    object: Literal["list"] = "list"
    data: list[MemoAudit]
    has_more: bool


# ---------------------------------------------------------------- events
class Event(BaseModel):
    id: int
    object: Literal["event"] = "event"
    job_id: str
    created_at: float = Field(description="unix seconds with sub-second precision")
    level: Literal["info", "warn", "error"]
    type: Literal["status", "progress", "message", "metrics"]
    stage: str | None = None
    message: str
    data: dict[str, Any] = Field(default_factory=dict)


class EventList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Event]
    has_more: bool


# ---------------------------------------------------------------- adapters
class Adapter(BaseModel):
    id: str
    object: Literal["adapter"] = "adapter"
    kind: Literal["lora", "full"]
    model: str = Field(description="registered model name the adapter was trained from")
    model_id: str | None
    base_model: str = Field(description="the base model source (what to load the adapter onto)")
    job_id: str | None
    method: str
    rank: int | None = None
    alpha: int | None = None
    target_modules: list[str] | None = None
    files: dict[str, str] = Field(description="file name -> sha256")
    sha256: str | None = Field(None, description="sha256 of the weights file")
    size_bytes: int
    archive_sha256: str = Field(description="sha256 of the download archive")
    download_url: str
    created_at: int


class AdapterList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Adapter]
    has_more: bool


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ok"] = "ok"
    database: Literal["ok"] = "ok"
    broker: Literal["ok"] = "ok"
