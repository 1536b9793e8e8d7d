"""Request and response bodies (the wire format SDKs are generated from).

Request bodies *are* the engine's pydantic configs plus what only the service needs: an unlearn
request is an ``UnlearnConfig`` (every knob declared once, in ``meow_engine.config``) with the
model, the facts and metadata; a MEMO audit request is a ``MemoConfig`` likewise. The API thus
rejects exactly what the CLI rejects, with the same messages, and new engine knobs appear here
without a copy. ``method_params`` is checked against the method's own ``Params`` from the
engine's torch-free catalog, so a typo is a 422, not a job that fails in the worker. Limits that
depend on settings (fact counts, text length) and references to other resources are checked in
the routes and reported in the same problem shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from meow_engine.config import InverterConfig, MemoConfig, UnlearnConfig
from meow_engine.errors import ConfigError
from meow_engine.facts import MAX_PARAPHRASES, MAX_SPANS
from meow_engine.methods.catalog import CATALOG
from meow_engine.results import FactReport, MemoResult, RoundRecord, SetSummary
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
    shared: bool = Field(False, description="readable by every tenant (admin keys only)")


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    name: str
    source: str
    source_kind: Literal["builtin", "path", "hub"]
    shared: bool = Field(False, description="registered by an admin for every tenant")
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
    sensitive: list[Annotated[str, Field(min_length=1, max_length=1000)]] = Field(
        default_factory=list, max_length=MAX_SPANS,
        description="strings of the answer that must disappear (e.g. a phone number); empty: meow detects them "
                    "and reports which it used")
    paraphrases: list[Annotated[str, Field(min_length=1, max_length=2000)]] = Field(
        default_factory=list, max_length=MAX_PARAPHRASES,
        description="other ways to ask the question, used as leak probes (empty: engine rephrasings)")

    @field_validator("question", "answer")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()

    @model_validator(mode="after")
    def _spans_in_answer(self) -> FactIn:
        for span in self.sensitive:
            if span.strip().casefold() not in self.answer.casefold():
                raise ValueError(f"sensitive span {span[:80]!r} does not occur in the answer")
        return self


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
#: inverter fields only the service knows; they never reach the engine's InverterConfig
SERVICE_INVERTER_FIELDS = {"endpoint", "api_key"}


class InverterIn(InverterConfig):
    """The engine's inverter config, plus how a request reaches an OpenAI-compatible endpoint."""

    endpoint: str | None = Field(None, description="a server-configured endpoint by name "
                                 "(MEOW_INVERTER_ENDPOINTS); its URL and key stay on the server")
    api_key: SecretStr | None = Field(None, description="your own key for `base_url`: used once by the worker, "
                                      "never stored with the job nor returned", json_schema_extra={"writeOnly": True})


class UnlearnCreate(UnlearnConfig):
    model: str = Field(description="model id (mdl_…) or name")
    facts: list[FactIn] = Field(min_length=1, description="facts to forget")
    retain_facts: list[FactIn] = Field(default_factory=list, description="facts to keep, used as utility probes")
    method: MethodName = Field("meow", description="unlearning method (canonical name or open-unlearning alias)")
    inverter: InverterIn = Field(default_factory=InverterIn)
    metadata: Metadata = Field(default_factory=dict, description="your string key/values, echoed back")

    _check_meta = field_validator("metadata")(classmethod(lambda cls, v: _check_metadata(v)))

    @field_validator("method_params")
    @classmethod
    def _method_params(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if "refusals_file" in v:
            raise ValueError("refusals_file names a file on the worker, and requests never name worker paths; "
                             "leave it out to use the built-in refusal set")
        method = info.data.get("method")
        if method is not None:
            try:
                CATALOG.validate(method, v)
            except ConfigError as e:
                raise ValueError(str(e)) from None
        return v

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
        """The engine's config: this body's ``UnlearnConfig`` fields, the method under its canonical name."""
        data = self.model_dump(include=set(UnlearnConfig.model_fields), exclude={"inverter": SERVICE_INVERTER_FIELDS})
        return UnlearnConfig.model_validate({**data, "method": CATALOG.canonical(self.method)})


class UnlearnResultOut(BaseModel):
    adapter_id: str | None = Field(None, description="the produced adapter (or full weights), see /v1/adapters")
    method: str
    verdict: str | None = Field(None, description="forgotten | partial | not_forgotten (worst of the facts); "
                                "null when the leakage audit was disabled")
    verdict_reason: str | None = None
    target_met: bool | None = None
    rounds: list[RoundRecord] = Field(default_factory=list, description="leakage audits between training rounds")
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
class MemoCreate(MemoConfig):
    model: str | None = Field(None, description="model id or name; optional when adapter is given")
    adapter: str | None = Field(None, description="adapter id to apply on top of its base model")
    facts: list[FactIn] = Field(min_length=1)
    metadata: Metadata = Field(default_factory=dict)

    _check_meta = field_validator("metadata")(classmethod(lambda cls, v: _check_metadata(v)))

    @model_validator(mode="after")
    def _target(self) -> MemoCreate:
        if self.model is None and self.adapter is None:
            raise ValueError("give a model or an adapter")
        return self

    def engine_config(self) -> MemoConfig:
        return MemoConfig.model_validate(self.model_dump(include=set(MemoConfig.model_fields)))


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
