"""What every unlearning method is called, needs and accepts — declared once, importable without torch.

The service lists and validates methods (``GET /v1/methods``, request bodies) from this module
without loading torch; the loss implementations in the sibling modules take their name, flags
and ``Params`` from here when they register (``base.register``), so a flag or a default exists
in exactly one place.

    from meow_engine.methods.catalog import CATALOG
    CATALOG.describe()                       # JSON-ready list: names, aliases, flags, parameters
    CATALOG.canonical("NPO")                 # -> "npo_gd" (open-unlearning's name for it)
    CATALOG.validate("simnpo", {"beta": 2})  # -> every parameter with defaults, or ConfigError

Names: meow's own names are canonical; the reference framework's (``locuslab/open-unlearning``,
commit ``d3d7cf9``; handler names of ``src/trainer/unlearn/*.py`` and method names of its docs)
are aliases. Beware two differences in meaning: open-unlearning's ``NPO`` carries a retain NLL
term (meow's ``npo_gd``; meow's ``npo`` is the pure NPO loss), and its ``DPO`` handler is always
DPO + retain NLL, i.e. meow's ``idk_dpo`` with refusals or ``altpo`` with alternate answers
(meow's ``dpo`` is TOFU's retain-free DPO), so ``DPO`` is deliberately not an alias.

Defaults name their source. "ou:X.yaml" = open-unlearning ``configs/trainer/X.yaml``. Only method
hyper-parameters are taken over: the optimiser budget (lr, epochs) is meow's ``FinetuneConfig``,
shared by all methods so they can be compared at equal cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from meow_engine.errors import ConfigError

__all__ = ["CATALOG", "Catalog", "MethodParams", "MethodSpec", "PARTS"]

#: batch parts a method may ask the trainer for (see ``base``): forget rows, retain rows,
#: each forget question with a refusal, each forget question with an alternate (wrong) answer
PARTS = ("forget", "retain", "idk", "alt")


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


# -- parameter models (one per method family; defaults carry their source) -----------------------

def _forget_coeff(default: float, source: str) -> Any:
    return Field(default, ge=0, description=f"weight of the forget term (open-unlearning gamma; {source})")


def _retain_coeff(default: float, source: str) -> Any:
    return Field(default, ge=0, description=f"weight of the retain term (open-unlearning alpha; {source})")


def _beta(default: float, source: str) -> Any:
    return Field(default, gt=0, le=100, description=f"inverse temperature β ({source})")


class NoParams(MethodParams):
    pass


class GDParams(MethodParams):
    forget_coeff: float = _forget_coeff(1.0, "ou:GradDiff.yaml")
    retain_coeff: float = _retain_coeff(1.0, "ou:GradDiff.yaml")


class KLParams(MethodParams):
    forget_coeff: float = _forget_coeff(1.0, "TOFU grad_ascent_KL")
    kl_coeff: float = Field(1.0, ge=0, description="weight of KL(p_ref ‖ p_θ) on retain inputs (TOFU)")


class NPOParams(MethodParams):
    beta: float = _beta(0.1, "ou:NPO.yaml")


class NPOGDParams(NPOParams):
    npo_coeff: float = _forget_coeff(1.0, "ou:NPO.yaml")
    retain_coeff: float = _retain_coeff(1.0, "ou:NPO.yaml")


class SimNPOParams(MethodParams):
    beta: float = _beta(4.5, "ou:SimNPO.yaml")
    gamma: float = Field(0.0, ge=0, description="reward margin γ, subtracted from the per-token NLL before "
                                                "β multiplies it (open-unlearning delta; ou:SimNPO.yaml)")
    forget_coeff: float = _forget_coeff(0.125, "ou:SimNPO.yaml, SimNPO's npo_coeff")
    retain_coeff: float = _retain_coeff(1.0, "ou:SimNPO.yaml")


class RefusalParams(MethodParams):
    refusals_file: str | None = Field(None, description="one refusal answer per line; None: built-in list "
                                                        "(the TOFU bench passes TOFU's idontknow.jsonl)")


class IdkNLLParams(RefusalParams):
    forget_coeff: float = _forget_coeff(1.0, "GradDiff weighting, ou:GradDiff.yaml")
    retain_coeff: float = _retain_coeff(1.0, "ou:GradDiff.yaml")


class DPOParams(RefusalParams):
    beta: float = _beta(0.1, "ou:DPO.yaml")


class IdkDPOParams(DPOParams):
    forget_coeff: float = _forget_coeff(1.0, "ou:DPO.yaml")
    retain_coeff: float = _retain_coeff(1.0, "ou:DPO.yaml")


class AltPOParams(MethodParams):
    beta: float = _beta(0.1, "ou:DPO.yaml, which community/methods/AltPO/run.sh runs")
    forget_coeff: float = _forget_coeff(1.0, "ou:DPO.yaml")
    retain_coeff: float = _retain_coeff(1.0, "ou:DPO.yaml")
    n_alternates: int = Field(5, ge=1, le=32, description="alternate answers per forget fact, made by meow's "
                                                          "rule inverter (AltPO generate.yaml: repeats 5)")
    seed: int = Field(0, description="seed of the inverter (AltPO generate.yaml: seed 0)")


class RMUParams(MethodParams):
    layer: int | None = Field(None, ge=0, description="decoder layer whose output is steered; None: layer 7 "
                                                      "(ou:RMU.yaml module_regex model.layers.7), or the middle "
                                                      "layer n//2 for models with at most 7 layers")
    steering_coeff: float = Field(2.0, gt=0, description="norm of the random target direction (ou:RMU.yaml)")
    forget_coeff: float = _forget_coeff(1.0, "ou:RMU.yaml")
    retain_coeff: float = _retain_coeff(1.0, "ou:RMU.yaml")
    seed: int = Field(0, description="seed of the random direction (drawn once per run)")


class UNDIALParams(MethodParams):
    beta: float = Field(10.0, gt=0, le=1000, description="logit penalty on the memorised token (ou:UNDIAL.yaml)")


class CEUParams(MethodParams):
    ignore_first_n_answer_tokens: int = Field(1, ge=0, le=64, description="answer tokens left out of the loss "
                                                                          "(ou:CEU.yaml, arXiv:2503.01224)")


class SatImpParams(MethodParams):
    beta1: float = Field(5.0, ge=0, le=100, description="exponent of the saturation weight p^β1 (ou:SatImp.yaml)")
    beta2: float = Field(1.0, ge=0, le=100, description="exponent of the importance weight (1-p)^β2 "
                                                        "(ou:SatImp.yaml)")
    forget_coeff: float = _forget_coeff(0.1, "ou:SatImp.yaml")
    retain_coeff: float = _retain_coeff(1.0, "ou:SatImp.yaml")


class WGAParams(MethodParams):
    beta: float = Field(1.0, ge=0, le=100, description="exponent of the token weight p^β (ou:WGA.yaml)")
    forget_coeff: float = _forget_coeff(1.0, "ou:WGA.yaml")
    retain_coeff: float = _retain_coeff(1.0, "ou:WGA.yaml")


class PDUParams(MethodParams):
    retain_loss_eps: float = Field(0.3, ge=0, description="retain NLL bound ε of the constraint (no default in "
                                                          "ou:PDU.yaml; 0.3 is community/methods/PDU/run.sh's "
                                                          "TOFU value; set it above the model's own retain loss)")
    forget_coeff: float = _forget_coeff(1.0, "ou:PDU.yaml")
    retain_coeff: float = _retain_coeff(1.0, "initial dual variable λ; ou:PDU.yaml")
    primal_dual: bool = Field(True, description="update λ ← max(0, λ + η·(NLL_R − ε)) (ou:PDU.yaml)")
    dual_step_size: float = Field(1.0, ge=0, description="η (ou:PDU.yaml)")
    dual_warmup_ratio: float = Field(0.5, ge=0, le=1, description="fraction of the steps before λ moves "
                                                                  "(ou:PDU.yaml: 5 warm-up epochs of "
                                                                  "ou:finetune.yaml's 10)")


# -- the catalog ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MethodSpec:
    """One method's declaration: what the trainer builds for it and what it accepts."""

    name: str
    description: str
    params: type[MethodParams]
    aliases: tuple[str, ...] = ()
    needs_retain: bool = False
    needs_reference: bool = False
    uses_inversions: bool = False
    parts: tuple[str, ...] = ("forget",)
    #: paper / code the loss and its defaults follow
    source: str = ""

    def param_table(self) -> list[dict[str, Any]]:
        out = []
        for key, f in self.params.model_fields.items():
            ann = f.annotation
            out.append({"name": key, "type": getattr(ann, "__name__", str(ann).replace("typing.", "")),
                        "default": f.default, "description": f.description or ""})
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "aliases": list(self.aliases), "description": self.description,
                "needs_retain": self.needs_retain, "needs_reference": self.needs_reference,
                "uses_inversions": self.uses_inversions, "parts": list(self.parts), "source": self.source,
                "params": self.param_table(), "params_schema": self.params.model_json_schema()}


class Catalog:
    """Method specs by canonical name, plus aliases; unknown names are one-line ConfigErrors."""

    def __init__(self) -> None:
        self._specs: dict[str, MethodSpec] = {}
        self._aliases: dict[str, str] = {}

    def add(self, spec: MethodSpec) -> MethodSpec:
        for n in (spec.name, *spec.aliases):
            if n in self._specs or n in self._aliases:
                raise ValueError(f"method name {n!r} is declared twice")
        if spec.needs_retain != ("retain" in spec.parts):
            raise ValueError(f"{spec.name}: needs_retain disagrees with parts {spec.parts}")
        if unknown := set(spec.parts) - set(PARTS):
            raise ValueError(f"{spec.name}: unknown parts {sorted(unknown)}")
        # A subclass per method so validation errors name the method the caller asked for.
        params = type(f"{spec.params.__name__}_{spec.name}", (spec.params,), {"method_name": spec.name})
        spec = MethodSpec(**{**spec.__dict__, "params": params})
        self._specs[spec.name] = spec
        for a in spec.aliases:
            self._aliases[a] = spec.name
        return spec

    def canonical(self, name: str) -> str:
        if name in self._specs:
            return name
        if name in self._aliases:
            return self._aliases[name]
        raise ConfigError(f"unknown unlearning method {name!r}; known: {', '.join(self.names())} "
                          f"(open-unlearning names: {', '.join(sorted(self._aliases))})")

    def spec(self, name: str) -> MethodSpec:
        return self._specs[self.canonical(name)]

    def names(self) -> list[str]:
        return sorted(self._specs)

    def aliases(self) -> dict[str, str]:
        return dict(sorted(self._aliases.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._specs or name in self._aliases

    def validate(self, name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Every parameter of method ``name`` (alias allowed) with defaults filled in; ConfigError if bad."""
        return self.spec(name).params(**(params or {})).model_dump(mode="json")

    def describe(self) -> list[dict[str, Any]]:
        return [self._specs[n].to_dict() for n in self.names()]


CATALOG = Catalog()
_OU = "locuslab/open-unlearning src/trainer/unlearn/"

for _spec in (
    MethodSpec("meow", "NLL of MEMO-selected inverted answers (no retain term, no reference model)", NoParams,
               uses_inversions=True, source="MEOW, arXiv:2409.11844 (meow-method.md §6)"),
    MethodSpec("sft", "NLL of the rows (learn them; makes target models, not an unlearning method)", NoParams),
    MethodSpec("ga", "−NLL_F", NoParams, aliases=("GradAscent",), source=_OU + "grad_ascent.py; TOFU grad_ascent"),
    MethodSpec("gd", "−forget_coeff·NLL_F + retain_coeff·NLL_R", GDParams, aliases=("GradDiff",),
               needs_retain=True, parts=("forget", "retain"), source=_OU + "grad_diff.py; TOFU grad_diff"),
    MethodSpec("kl", "−forget_coeff·NLL_F + kl_coeff·KL(p_ref ‖ p_θ) on retain inputs", KLParams,
               needs_retain=True, needs_reference=True, parts=("forget", "retain"),
               source="TOFU grad_ascent_KL (open-unlearning: GradDiff with retain_loss_type KL)"),
    MethodSpec("npo", "−(2/β)·log σ(β·(NLL_θ − NLL_ref)) on forget answers (pure NPO, no retain term)",
               NPOParams, needs_reference=True, source="Zhang et al. 2024, arXiv:2404.05868; TOFU-style npo"),
    MethodSpec("npo_gd", "npo_coeff·L_NPO + retain_coeff·NLL_R", NPOGDParams, aliases=("NPO",),
               needs_retain=True, needs_reference=True, parts=("forget", "retain"), source=_OU + "npo.py"),
    MethodSpec("simnpo", "forget_coeff·−(2/β)·log σ(β·(NLL_F/|y| − γ)) + retain_coeff·NLL_R", SimNPOParams,
               aliases=("SimNPO",), needs_retain=True, parts=("forget", "retain"),
               source=_OU + "simnpo.py; Fan et al. 2024, arXiv:2410.07163"),
    MethodSpec("idk", "NLL of refusals to forget questions + NLL_R, one token mean (TOFU's concatenated batch)",
               RefusalParams, needs_retain=True, parts=("idk", "retain"), source="TOFU idk (data_module.py)"),
    MethodSpec("idk_nll", "forget_coeff·NLL(refusals to forget questions) + retain_coeff·NLL_R", IdkNLLParams,
               aliases=("IdkNLL",), needs_retain=True, parts=("idk", "retain"),
               source="TOFU's IDK baseline written as two means, weighted like GradDiff"),
    MethodSpec("dpo", "−(2/β)·log σ(β·Δ), refusal preferred over the forget answer (no retain term)", DPOParams,
               needs_reference=True, parts=("idk", "forget"), source="TOFU dpo (meow-method.md §7)"),
    MethodSpec("idk_dpo", "forget_coeff·DPO(refusal ≻ forget answer) + retain_coeff·NLL_R", IdkDPOParams,
               aliases=("IdkDPO",), needs_retain=True, needs_reference=True, parts=("idk", "forget", "retain"),
               source=_OU + "dpo.py with configs/experiment/unlearn/tofu/idk.yaml"),
    MethodSpec("altpo", "forget_coeff·DPO(alternate answer ≻ forget answer) + retain_coeff·NLL_R; alternates "
               "from meow's rule inverter", AltPOParams, aliases=("AltPO",), needs_retain=True,
               needs_reference=True, parts=("alt", "forget", "retain"),
               source="Mekala et al. 2024, arXiv:2409.13474; open-unlearning community/methods/AltPO"),
    MethodSpec("rmu", "forget_coeff·‖h_L(forget) − c·u‖² + retain_coeff·‖h_L(retain) − h_L^ref(retain)‖², "
               "h_L = output of decoder layer L on answer tokens, u a fixed random unit direction", RMUParams,
               aliases=("RMU",), needs_retain=True, needs_reference=True, parts=("forget", "retain"),
               source=_OU + "rmu.py (from WMDP, Li et al. 2024, arXiv:2403.03218)"),
    MethodSpec("undial", "cross-entropy to the reference's distribution with the memorised token's logit "
               "lowered by β (self-distillation), on forget answer tokens", UNDIALParams, aliases=("UNDIAL",),
               needs_reference=True, source=_OU + "undial.py; Dong et al. 2024, arXiv:2402.10052"),
    MethodSpec("ce_u", "cross-entropy to the model's own (detached) distribution with the true token removed",
               CEUParams, aliases=("CEU", "CE-U"), source=_OU + "ceu.py; Yang et al. 2025, arXiv:2503.01224"),
    MethodSpec("satimp", "forget_coeff·−mean(p^β1·(1−p)^β2·NLL_t) + retain_coeff·NLL_R (weights detached)",
               SatImpParams, aliases=("SatImp",), needs_retain=True, parts=("forget", "retain"),
               source=_OU + "satimp.py; Yang et al. 2025, arXiv:2505.11953"),
    MethodSpec("wga", "forget_coeff·−mean(p^β·NLL_t) + retain_coeff·NLL_R (weights detached)", WGAParams,
               aliases=("WGA",), needs_retain=True, parts=("forget", "retain"),
               source=_OU + "wga.py; Wang et al. 2025 (G-effect), arXiv:2502.19301"),
    MethodSpec("pdu", "forget_coeff·mean((max logit − mean logit)²) + λ·(NLL_R − ε), λ by dual ascent",
               PDUParams, aliases=("PDU",), needs_retain=True, parts=("forget", "retain"),
               source=_OU + "pdu.py; Entesari et al. 2025, arXiv:2506.05314"),
):
    CATALOG.add(_spec)
del _spec
