"""Presets of ``meow bench tofu``: which authors, which model, how targets are made, the unlearning budget.

A preset pins everything that changes the numbers, so a benchmark is named by ``(preset, seed)``
and its cache can be keyed by the preset's fingerprint. The equal budget is one
``FinetuneConfig`` shared by every method: same optimizer steps, batch, learning rate, schedule and
mode (LoRA or full). Equal *steps* rather than equal epochs because MEOW trains on
``rows_per_qa`` inverted rows per forget question: with equal steps every method sees each forget
question equally often.

Authors come from the head of TOFU (rows 0-399 = ``retain_perturbed.json``, 20 authors × 20 QA),
the only rows that carry a paraphrased answer and five perturbed answers for *every* split we make,
so forget and retain items both get truth ratios. Forget = the last ``n_forget_authors`` of the
subset, retain = the rest, as TOFU's forget/retain splits are cut.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meow_engine.config import FinetuneConfig, MemoConfig
from meow_engine.errors import ConfigError
from meow_engine.metrics.evaluator import EvalOptions
from meow_engine.tiny.builder import TinySettings

#: every unlearning method the benchmark compares (every catalog entry but ``sft``), MEOW first, then the
#: TOFU baselines, then open-unlearning's methods (meow_engine/methods/catalog.py)
ALL_METHODS: tuple[str, ...] = ("meow", "ga", "gd", "kl", "npo", "npo_gd", "idk", "dpo", "simnpo",
                                "idk_nll", "idk_dpo", "altpo", "rmu", "undial", "ce_u", "satimp", "wga", "pdu")
#: authors in ``retain_perturbed.json`` (TOFU rows 0-399) and questions per author
MAX_AUTHORS = 20
QUESTIONS_PER_AUTHOR = 20


@dataclass(frozen=True)
class TofuPreset:
    name: str
    description: str
    n_authors: int
    n_forget_authors: int
    #: "tiny" = a Llama trained from scratch on the subset; else a ``load_model`` ref that is SFT-ed
    base: str
    unlearn: FinetuneConfig
    questions_per_author: int = QUESTIONS_PER_AUTHOR
    tiny: TinySettings | None = None
    #: a tiny target that misses its recall target is an error (off only for smoke tests)
    require_recall: bool = True
    #: SFT recipe of target and retain models for a pretrained base (None for ``tiny``)
    target_finetune: FinetuneConfig | None = None
    method_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    eval: EvalOptions = field(default_factory=EvalOptions)
    #: cap on real-authors / world-facts rows (None: all 100 / 117)
    ra_wf_size: int | None = None
    memo: MemoConfig = field(default_factory=MemoConfig)
    device: str | None = None
    dtype: str | None = None
    #: torch CPU threads (1 is fastest for small models on a shared box); None leaves torch's default
    threads: int | None = 1

    def __post_init__(self) -> None:
        if not 1 <= self.n_forget_authors < self.n_authors <= MAX_AUTHORS:
            raise ConfigError(f"preset {self.name!r}: need 1 <= n_forget_authors < n_authors <= {MAX_AUTHORS}")
        if not 1 <= self.questions_per_author <= QUESTIONS_PER_AUTHOR:
            raise ConfigError(f"preset {self.name!r}: questions_per_author must be in 1..{QUESTIONS_PER_AUTHOR}")
        if (self.base == "tiny") != (self.tiny is not None):
            raise ConfigError(f"preset {self.name!r}: tiny settings go with base 'tiny' and only with it")
        if self.base != "tiny" and self.target_finetune is None:
            raise ConfigError(f"preset {self.name!r}: a pretrained base needs target_finetune")

    def to_dict(self) -> dict[str, Any]:
        """Everything that changes the numbers, JSON-ready (the cache fingerprint and the JSON record)."""
        return {
            "name": self.name,
            "description": self.description,
            "n_authors": self.n_authors,
            "n_forget_authors": self.n_forget_authors,
            "questions_per_author": self.questions_per_author,
            "base": self.base,
            "tiny": self.tiny.to_dict() if self.tiny else None,
            "require_recall": self.require_recall,
            "target_finetune": self.target_finetune.model_dump(mode="json") if self.target_finetune else None,
            "unlearn": self.unlearn.model_dump(mode="json"),
            "method_params": {k: dict(v) for k, v in self.method_params.items()},
            "eval": self.eval.model_dump(mode="json"),
            "ra_wf_size": self.ra_wf_size,
            "memo": self.memo.model_dump(mode="json"),
            "device": self.device,
            "dtype": self.dtype,
        }


# Full finetuning for the tiny model: at hidden 128 a rank-8 LoRA is a sizeable fraction of each
# matrix anyway, full mode has no adapter hyperparameters to tune, and the reference model for
# KL/NPO/DPO is a frozen copy of 0.5M parameters (free). lr 3e-4 with 50 steps of 4 rows is
# calibrated so that the methods visibly move (GA destroys forget ROUGE within the budget) without
# every method collapsing the model.
_TINY_UNLEARN = FinetuneConfig(mode="full", max_steps=50, lr=3e-4, batch_size=4, grad_accum=1, weight_decay=0.01,
                               warmup_ratio=0.1, bf16="off")

PRESETS: dict[str, TofuPreset] = {
    p.name: p
    for p in (
        TofuPreset(
            name="tiny",
            description="tiny Llama trained from scratch on 4 TOFU authors (80 QA); forget = the last author",
            n_authors=4, n_forget_authors=1, base="tiny",
            tiny=TinySettings(), unlearn=_TINY_UNLEARN,
            eval=EvalOptions(batch_size=32), device="cpu",
        ),
        TofuPreset(
            name="micro",
            description="smoke test: 2 authors × 4 QA, a few steps; the numbers mean nothing",
            n_authors=2, n_forget_authors=1, questions_per_author=4, base="tiny",
            tiny=TinySettings(hidden=64, layers=1, heads=2, intermediate=128, vocab_size=512, lr=5e-3, max_steps=80,
                              eval_every=20, anneal_steps=10, max_new_tokens=48),
            require_recall=False,
            unlearn=FinetuneConfig(mode="full", max_steps=4, lr=1e-3, batch_size=4, bf16="off"),
            eval=EvalOptions(batch_size=16, max_tokens=96), ra_wf_size=4,
            memo=MemoConfig(max_new_tokens=32), device="cpu",
        ),
        TofuPreset(
            name="smollm2",
            description="SmolLM2-135M-Instruct, full-SFT on 20 TOFU authors (400 QA), forget = the last 2; "
                        "LoRA unlearning (GPU-sized)",
            n_authors=20, n_forget_authors=2, base="smollm2-135m-instruct",
            target_finetune=FinetuneConfig(mode="full", epochs=10, lr=5e-5, batch_size=16, warmup_ratio=0.1),
            unlearn=FinetuneConfig(mode="lora", max_steps=50, lr=3e-4, batch_size=8, lora_rank=16, lora_alpha=32),
            eval=EvalOptions(batch_size=64), threads=None,
        ),
        TofuPreset(
            name="smollm2-cpu",
            description="SmolLM2-135M-Instruct on 2 TOFU authors (40 QA), forget = the last author; "
                        "64-token generation, real-author/world-fact probes capped at 20 rows (CPU-sized)",
            n_authors=2, n_forget_authors=1, base="smollm2-135m-instruct",
            target_finetune=FinetuneConfig(mode="full", epochs=5, lr=1e-4, batch_size=8, warmup_ratio=0.1),
            unlearn=FinetuneConfig(mode="lora", max_steps=10, lr=5e-4, batch_size=4, lora_rank=16, lora_alpha=32),
            eval=EvalOptions(batch_size=16, generation="max_new_tokens", max_tokens=64), ra_wf_size=20,
            memo=MemoConfig(max_new_tokens=64), device="cpu", threads=2,
        ),
    )
}


def get_preset(name: str) -> TofuPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown TOFU bench preset {name!r}; known: {', '.join(PRESETS)}") from None
