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

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from api import guards
from api.guards import check_seed
from meow_engine import results as engine_results
from meow_engine.config import (
    FinetuneConfig,
    InverterConfig,
    LeakAuditConfig,
    MemoConfig,
    SelectionConfig,
    UnlearnConfig,
)
from meow_engine.errors import ConfigError
from meow_engine.facts import MAX_PARAPHRASES, MAX_SPANS
from meow_engine.methods.catalog import CATALOG
from meow_engine.results import MemoResult, RoundRecord, SetSummary
from service.catalog import INVERTER_KINDS, MethodName
from service.ids import PREFIXES

Status = Literal["queued", "running", "cancelling", "cancelled", "succeeded", "failed", "crashed"]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"
#: a model name must not look like a model id, or a name could shadow another model's id
MODEL_ID_PREFIX = PREFIXES["model"] + "_"


def unix(ts: datetime | None) -> int | None:
    return None if ts is None else int(ts.timestamp())


class _Storable(BaseModel):
    """Refuses, before field validation, any string the database cannot store (NUL, lone surrogates)."""

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        return guards.reject_unstorable_body(data)


class _In(_Storable):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- models
class ModelCreate(_In):
    name: str = Field(pattern=NAME_PATTERN, description="unique name jobs refer to the model by; not starting "
                      f"with {MODEL_ID_PREFIX} (ids start so)")
    source: str = Field(min_length=1, max_length=1024, description=(
        "a built-in name (demo:tiny, smollm2-135m-instruct), a local folder under a configured model root, "
        "or a Hugging Face id (org/name)"))
    shared: bool = Field(False, description="readable by every tenant (admin keys only)")

    @field_validator("name")
    @classmethod
    def _not_an_id(cls, v: str) -> str:
        if v.lower().startswith(MODEL_ID_PREFIX):
            raise ValueError(f"names starting with {MODEL_ID_PREFIX!r} are reserved for model ids")
        return v


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
    sha256: list[str] | None = Field(None, description="once purged: per fact, sha256(fact_salt + '\\n' + "
                                     "question + '\\n' + answer) in hex, in request order")


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
    api_key: SecretStr | None = Field(None, max_length=guards.MAX_KEY_CHARS,
                                      description="your own key for `base_url`: used once by the worker, "
                                      "never stored with the job nor returned", json_schema_extra={"writeOnly": True})

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: int) -> int:
        return check_seed(v)

    @field_validator("prompt", "base_url", "model", "endpoint", "kind")
    @classmethod
    def _capped(cls, v: str | None, info: ValidationInfo) -> str | None:
        limit = {"prompt": guards.MAX_PROMPT_CHARS, "base_url": guards.MAX_URL_CHARS}.get(
            info.field_name or "", guards.MAX_REF_CHARS)
        if v is not None and len(v) > limit:
            raise ValueError(f"{len(v)} characters; the limit is {limit}")
        return v

    @field_validator("candidates")
    @classmethod
    def _candidates(cls, v: list[list[str]] | None) -> list[list[str]] | None:
        for i, cands in enumerate(v or []):
            if len(cands) > guards.MAX_CANDIDATES_PER_FACT:
                raise ValueError(f"fact {i}: {len(cands)} candidates; the limit is {guards.MAX_CANDIDATES_PER_FACT}")
            for j, c in enumerate(cands):
                if len(c) > guards.MAX_CANDIDATE_CHARS:
                    raise ValueError(f"fact {i}, candidate {j}: {len(c)} characters; the limit is "
                                     f"{guards.MAX_CANDIDATE_CHARS}")
        return v


class UnlearnCreate(UnlearnConfig, _Storable):
    model: str = Field(max_length=guards.MAX_REF_CHARS, description="model id (mdl_…) or name")
    facts: list[FactIn] = Field(min_length=1, description="facts to forget")
    retain_facts: list[FactIn] = Field(default_factory=list, description="facts to keep, used as utility probes")
    method: MethodName = Field("meow", description="unlearning method (canonical name or open-unlearning alias)")
    inverter: InverterIn = Field(default_factory=InverterIn)
    metadata: Metadata = Field(default_factory=dict, description="your string key/values, echoed back")

    _check_meta = field_validator("metadata")(classmethod(lambda cls, v: _check_metadata(v)))

    @field_validator("selection", "finetune", "leak_audit")
    @classmethod
    def _seeds(cls, v: SelectionConfig | FinetuneConfig | LeakAuditConfig) -> Any:
        check_seed(v.seed)
        return v

    @field_validator("finetune")
    @classmethod
    def _target_modules(cls, v: FinetuneConfig) -> FinetuneConfig:
        mods = v.target_modules
        if mods is not None:
            if not mods or len(mods) > guards.MAX_TARGET_MODULES:
                raise ValueError(f"target_modules: 1 to {guards.MAX_TARGET_MODULES} names (or null for every "
                                 f"linear layer); got {len(mods)}")
            for m in mods:
                if len(m) > guards.MAX_MODULE_CHARS or not guards.MODULE_NAME.match(m):
                    raise ValueError(f"target_modules: {guards.clip(m, 80)!r} is not a module name (a dotted "
                                     f"path of identifiers, e.g. self_attn.q_proj, at most {guards.MAX_MODULE_CHARS}"
                                     " characters)")
        return v

    @field_validator("leak_audit")
    @classmethod
    def _prefixes(cls, v: LeakAuditConfig) -> LeakAuditConfig:
        for p in v.extraction_prefixes:
            if len(p) > guards.MAX_PREFIX_CHARS:
                raise ValueError(f"extraction_prefixes: {len(p)} characters; the limit is {guards.MAX_PREFIX_CHARS}")
        return v

    @field_validator("method_params")
    @classmethod
    def _method_params(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if len(json.dumps(v)) > guards.MAX_METHOD_PARAMS_CHARS:
            raise ValueError(f"more than {guards.MAX_METHOD_PARAMS_CHARS} characters as JSON")
        if "refusals_file" in v:
            raise ValueError("refusals_file names a file on the worker, and requests never name worker paths; "
                             "leave it out to use the built-in refusal set")
        method = info.data.get("method")
        if method is not None:
            try:
                full = CATALOG.validate(method, v)
            except ConfigError as e:
                raise ValueError(str(e)) from None
            if "seed" in full:
                check_seed(full["seed"])
            for key, val in full.items():  # stored as JSON and handed to torch: int64 at most
                if isinstance(val, int) and abs(val) > guards.INT64_MAX:
                    raise ValueError(f"{key}: beyond 64 bits")
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
        spec = CATALOG.spec(self.method)
        if spec.needs_retain and not self.retain_facts:
            raise ValueError(f"retain_facts: method {spec.name!r} trains on retain facts; give at least one")
        if spec.uses_inversions:  # selection keeps k of each fact's candidates: fewer than k cannot work
            k = self.selection.k
            if self.inverter.kind == "given":
                short = [(i, len(c)) for i, c in enumerate(self.inverter.candidates or []) if len(c) < k]
                if short:
                    raise ValueError(f"inverter.candidates: fact {short[0][0]} has {short[0][1]} candidates, "
                                     f"fewer than selection.k ({k})")
            elif self.inverter.n < k:
                raise ValueError(f"inverter.n ({self.inverter.n}) must be at least selection.k ({k}): selection "
                                 "keeps k of each fact's n candidates")
        self.engine_config()  # cross-field checks the engine does itself
        return self

    def engine_config(self) -> UnlearnConfig:
        """The engine's config: this body's ``UnlearnConfig`` fields, the method under its canonical name."""
        data = self.model_dump(include=set(UnlearnConfig.model_fields), exclude={"inverter": SERVICE_INVERTER_FIELDS})
        return UnlearnConfig.model_validate({**data, "method": CATALOG.canonical(self.method)})


# Result texts are null once a job is purged (service.purge): the engine's result types with their
# text fields nullable, under the engine's names so SDK type names stay stable.
class Inversion(engine_results.Inversion):
    text: str | None  # type: ignore[assignment]


class SpanInfo(engine_results.SpanInfo):
    text: str | None  # type: ignore[assignment]


class ProbeOutcome(engine_results.ProbeOutcome):
    prompt: str | None  # type: ignore[assignment]


class FactReport(engine_results.FactReport):
    question: str | None  # type: ignore[assignment]
    answer: str | None  # type: ignore[assignment]
    inversions: list[Inversion] = Field(default_factory=list)  # type: ignore[assignment]
    spans: list[SpanInfo] = Field(default_factory=list,  # type: ignore[assignment]
                                  description="the sensitive spans the audit checks")
    probes: list[ProbeOutcome] = Field(default_factory=list,  # type: ignore[assignment]
                                       description="the leak table of this fact")


class FactMemo(engine_results.FactMemo):
    question: str | None  # type: ignore[assignment]
    text: str | None = Field(description="the scored text (the answer in suffix mode)")  # type: ignore[assignment]


class Purge(BaseModel):
    purged_at: int | None = Field(None, description="when the facts' text and generations were removed "
                                  "(MEOW_FACT_RETENTION_S after the job ended); null: not yet")
    purged: list[str] = Field(default_factory=list, description="what was removed")
    fact_salt: str | None = Field(None, description="salt of forget_set.sha256 / retain_set.sha256")


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
    purge: Purge = Field(default_factory=Purge, description="the facts' text leaves the service when the job ends")


class UnlearnJobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[UnlearnJob]
    has_more: bool


# ---------------------------------------------------------------- memo
class MemoCreate(MemoConfig, _Storable):
    model: str | None = Field(None, max_length=guards.MAX_REF_CHARS,
                              description="model id or name; optional when adapter is given")
    adapter: str | None = Field(None, max_length=guards.MAX_REF_CHARS,
                                description="adapter id to apply on top of its base model")
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
    facts: list[FactMemo]  # type: ignore[assignment]


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
    purge: Purge = Field(default_factory=Purge, description="the facts' text leaves the service when the job ends")


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
    workers: int | None = Field(None, description="live workers consuming this API's queue (a heartbeat within "
                                "MEOW_STALE_AFTER_S); null when the database could not be asked. 0: jobs wait")


class Readiness(BaseModel):
    status: Literal["ok"] = "ok"
    database: Literal["ok"] = "ok"
    broker: Literal["ok"] = "ok"
    workers: int = Field(description="live workers consuming this API's queue (at least 1 when ready)")


# ---------------------------------------------------------------- webhooks
class WebhookEndpointCreate(_In):
    url: str = Field(min_length=1, max_length=2048, description="an http(s) URL; private, loopback and link-local "
                     "hosts are refused unless the server allows them (MEOW_WEBHOOK_ALLOW)")
    events: list[str] | None = Field(None, max_length=64, description="event types (`unlearn.job.succeeded`, "
                                     "`memo.audit.failed`, ...); default: every job state change")


class WebhookEndpoint(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    events: list[str]
    created_at: int
    secret: str | None = Field(None, description="`whsec_…` signing secret (Standard Webhooks); only in the "
                               "response that created the endpoint")


class WebhookEndpointList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookEndpoint]
    has_more: bool


class WebhookDelivery(BaseModel):
    id: int
    object: Literal["webhook_delivery"] = "webhook_delivery"
    message_id: str = Field(description="the `webhook-id` header: the same on every attempt of one event")
    type: str = Field(description="event type, e.g. unlearn.job.succeeded")
    job_id: str
    attempt: int
    succeeded: bool
    status_code: int | None = Field(None, description="the receiver's HTTP status; null: no answer")
    response: str | None = Field(None, description="the first 2048 characters of the receiver's body")
    error: str | None = Field(None, description="why no answer came (timeout, refused target, ...)")
    duration_ms: int
    created_at: int
    message_state: Literal["pending", "delivered", "failed"] = Field(
        description="the event's state now: pending (a retry is scheduled), delivered, failed (retries spent)")


class WebhookDeliveryList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookDelivery]
    has_more: bool


# ---------------------------------------------------------------- methods
class MethodParam(BaseModel):
    name: str
    type: str
    default: Any = None
    description: str = ""


class MethodInfo(BaseModel):
    """One unlearning method as the torch-free engine catalog declares it (what `method` accepts)."""

    name: str
    aliases: list[str] = Field(default_factory=list, description="open-unlearning names accepted for it")
    description: str = ""
    needs_retain: bool
    needs_reference: bool
    uses_inversions: bool
    parts: list[str] = Field(default_factory=list)
    source: str = ""
    params: list[MethodParam] = Field(default_factory=list, description="method_params with their defaults")


class MethodList(BaseModel):
    object: Literal["list"] = "list"
    data: list[MethodInfo]
    has_more: bool = False
