"""Train a tiny Llama from scratch until it has memorized a set of facts.

The result is the target model for demos, tests and CPU benchmarks: a real causal LM that
provably "knows" its facts (greedy ROUGE-L recall is measured and recorded), so unlearning has
something to remove. Three losses per step:

- question-masked SFT in the ``tofu`` prompt format (the same ``encode_example`` the finetune
  stage uses, so the model answers exactly the prompts the audits send);
- the facts as plain ``question answer`` text cut at a random character, which is how MEMO probes
  a model (see ``_raw_examples``);
- a language-model loss on a small plain-English corpus.

Schedule: linear warmup to a constant learning rate; once an audit shows the target recall, the
learning rate is annealed to zero over ``anneal_steps`` and the model audited again. Annealing
after reaching the target (rather than stopping at the first lucky audit) leaves the facts in a
flat minimum, so later finetuning of a few facts does not knock the others out.

Everything runs on CPU in fp32 with a fixed thread count and deterministic kernels, so one seed
gives bit-identical weights on one machine.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from meow_engine.errors import ConfigError
from meow_engine.facts import Fact, save_facts
from meow_engine.models import LoadedModel
from meow_engine.progress import NULL_REPORTER, Reporter
from meow_engine.prompts import EncodedExample, PromptFormat, collate, encode_example

BUILDER_VERSION = 2  # 2: TOFU-exact layout (the "Answer: " tag is learned)
MANIFEST = "meow_tiny.json"
FACTS_FILE = "facts.jsonl"
MAX_FACTS = 2000


@dataclass(frozen=True)
class TinySettings:
    """Architecture and training knobs. Defaults memorize 40 facts in about a minute of one CPU core."""

    hidden: int = 128
    layers: int = 2
    heads: int = 4
    intermediate: int = 384
    vocab_size: int = 1024
    max_positions: int = 256
    lr: float = 3e-3
    warmup_steps: int = 20
    max_steps: int = 1500
    eval_every: int = 20
    #: audits run only once the facts' token loss is below this (a greedy recall of 0.95 needs a far
    #: lower loss), so early steps are not slowed down by generating hopeless answers
    audit_below_loss: float = 1.0
    target_recall: float = 0.95
    anneal_steps: int = 60
    corpus_weight: float = 0.3
    #: weight of the facts as plain ``question answer`` text cut at a random character (see _raw_examples)
    raw_weight: float = 1.0
    corpus_batch: int = 16
    weight_decay: float = 0.0
    max_new_tokens: int = 96
    threads: int = 1

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ConfigError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        for name in ("hidden", "layers", "heads", "intermediate", "max_steps", "eval_every", "threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        if not 0 < self.target_recall <= 1:
            raise ConfigError("target_recall must be in (0, 1]")
        if self.vocab_size < 300:
            raise ConfigError("vocab_size must be at least 300 (byte alphabet + specials)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TinyBuildReport:
    recall: float
    min_recall: float
    reached_target: bool
    steps: int
    seconds: float
    n_facts: int
    n_params: int
    final_loss: float
    per_fact_recall: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextmanager
def _deterministic_cpu(threads: int):
    """Fix thread count and force deterministic kernels for the build; restore afterwards."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


@contextmanager
def _quiet_hf_progress():
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _lr_at(step: int, s: TinySettings, anneal_start: int | None) -> float:
    if step < s.warmup_steps:
        return s.lr * (step + 1) / s.warmup_steps
    if anneal_start is None:
        return s.lr
    t = min(1.0, (step - anneal_start) / max(1, s.anneal_steps))
    return s.lr * 0.5 * (1 + math.cos(math.pi * t))


def _corpus_examples(tokenizer: Any, texts: Sequence[str]) -> list[EncodedExample]:
    out = []
    for t in texts:
        ids = list(tokenizer(t).input_ids) + [tokenizer.eos_token_id]
        out.append(EncodedExample(input_ids=ids, labels=[-100] + ids[1:], prompt_len=1))
    return out


def _raw_examples(tokenizer: Any, facts: Sequence[Fact], rng: random.Random) -> list[EncodedExample]:
    """Each fact as plain ``q + " " + a`` text, split at a random character, halves tokenized apart.

    MEMO probes a model with exactly such text (``q + " " + a[:k]``, no prompt format, cuts falling
    mid-word) and expects it to continue ``a[k:]``. A real LLM's knowledge does not depend on the
    prompt format or on where a word was cut; a tiny model learns that only if it is shown. Without
    this, its MEMO would measure tokenization accidents, and unlearning in the SFT format would not
    reach the plain-text probe.
    """
    out = []
    for f in facts:
        text = f"{f.question} {f.answer}"
        k = rng.randrange(1, len(text) + 1)  # k == len(text): the text whole
        ids = list(tokenizer(text[:k]).input_ids)
        ids += list(tokenizer(text[k:], add_special_tokens=False).input_ids) + [tokenizer.eos_token_id]
        out.append(EncodedExample(input_ids=ids, labels=[-100] + ids[1:], prompt_len=1))
    return out


def build_tiny_model(
    facts: Sequence[Fact],
    out_dir: str | Path,
    *,
    seed: int = 0,
    settings: TinySettings | None = None,
    reporter: Reporter | None = None,
    tokenizer_facts: Sequence[Fact] | None = None,
) -> TinyBuildReport:
    """Train a tiny Llama on ``facts`` until greedy ROUGE-L recall reaches the target; save it to ``out_dir``.

    ``tokenizer_facts`` (default: ``facts``) are the facts the tokenizer is trained on; passing the
    same list to two builds gives both models one vocabulary (a TOFU retain model must tokenize the
    forget set exactly as the target does, or per-token losses are not comparable).

    The folder is a normal Hugging Face model folder (safetensors + tokenizer) that ``load_model``
    opens, plus ``meow_tiny.json`` (settings, seed, report) and ``facts.jsonl`` (what it memorized).
    """
    from transformers import LlamaForCausalLM

    from meow_engine.generation import rouge_l_audit
    from meow_engine.tiny.corpus import CORPUS
    from meow_engine.tiny.random_model import tiny_llama_config
    from meow_engine.tiny.tokenizer import train_tokenizer

    s = settings or TinySettings()
    rep = reporter or NULL_REPORTER
    facts = list(facts)
    if not facts:
        raise ConfigError("build_tiny_model needs at least one fact")
    if len(facts) > MAX_FACTS:
        raise ConfigError(f"{len(facts)} facts given; a tiny model memorizes at most {MAX_FACTS}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")

    fmt = PromptFormat("tofu")
    t0 = time.perf_counter()
    with _deterministic_cpu(s.threads):
        torch.manual_seed(seed)
        vocab_facts = facts if tokenizer_facts is None else list(tokenizer_facts)
        texts = [fmt.full_text(None, f.question, f.answer) for f in vocab_facts] + list(CORPUS)
        tokenizer = train_tokenizer(texts, vocab_size=s.vocab_size)
        examples = [encode_example(tokenizer, fmt, f.question, f.answer) for f in facts]
        longest = max(len(e.input_ids) for e in examples)
        if longest > s.max_positions:
            raise ConfigError(f"a fact is {longest} tokens long; the tiny model holds at most {s.max_positions}")
        fact_batch = collate(examples, tokenizer.pad_token_id)
        corpus = collate(_corpus_examples(tokenizer, CORPUS), tokenizer.pad_token_id)

        config = tiny_llama_config(
            len(tokenizer), hidden=s.hidden, layers=s.layers, heads=s.heads, intermediate=s.intermediate,
            max_positions=s.max_positions, tokenizer=tokenizer,
        )
        model = LlamaForCausalLM(config)
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.bos_token_id = tokenizer.bos_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        lm = LoadedModel(model=model, tokenizer=tokenizer, ref="tiny-build", path=None,
                         device=torch.device("cpu"), prompt_format=fmt)
        optim = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay, betas=(0.9, 0.98))
        gen = torch.Generator().manual_seed(seed)
        cut_rng = random.Random(seed)
        questions = [f.question for f in facts]
        answers = [f.answer for f in facts]

        def audit() -> list[float]:
            model.eval()
            _, scores = rouge_l_audit(lm, questions, answers, max_new_tokens=s.max_new_tokens)
            model.train()
            return scores

        anneal_start: int | None = None
        scores: list[float] = []
        scored_at = -1
        loss_value = float("nan")
        step = 0
        model.train()
        while step < s.max_steps:
            rep.check_stop()
            for group in optim.param_groups:
                group["lr"] = _lr_at(step, s, anneal_start)
            loss = fact_loss = model(**fact_batch).loss
            if s.raw_weight > 0:
                raw = collate(_raw_examples(tokenizer, facts, cut_rng), tokenizer.pad_token_id)
                loss = loss + s.raw_weight * model(**raw).loss
            if s.corpus_weight > 0:
                rows = torch.randperm(corpus["input_ids"].shape[0], generator=gen)[: s.corpus_batch]
                loss = loss + s.corpus_weight * model(**{k: v[rows] for k, v in corpus.items()}).loss
            optim.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            step += 1
            loss_value = float(loss.detach())
            done_annealing = anneal_start is not None and step - anneal_start >= s.anneal_steps
            # Greedy audits cost as much as many steps; skip them while the facts' loss shows they can't pass.
            due = anneal_start is None and step % s.eval_every == 0 and float(fact_loss.detach()) < s.audit_below_loss
            if done_annealing or due:
                scores, scored_at = audit(), step
                recall = sum(scores) / len(scores)
                rep.emit("build-tiny", step, s.max_steps, loss=loss_value, recall=recall)
                if done_annealing:
                    if recall >= s.target_recall:
                        break
                    anneal_start = None  # lost it while cooling down: train on at full rate
                elif recall >= s.target_recall:
                    anneal_start = step
            else:
                rep.emit("build-tiny", step, s.max_steps, loss=loss_value)
        if scored_at != step:  # ran out of steps between audits
            scores = audit()
        model.eval()
        recall = sum(scores) / len(scores)
        report = TinyBuildReport(
            recall=recall, min_recall=min(scores), reached_target=recall >= s.target_recall, steps=step,
            seconds=time.perf_counter() - t0, n_facts=len(facts), n_params=sum(p.numel() for p in model.parameters()),
            final_loss=loss_value, per_fact_recall=scores,
        )
        rep.emit("build-tiny", step, step, loss=loss_value, recall=recall)  # completes the progress bar
        out.mkdir(parents=True, exist_ok=True)
        with _quiet_hf_progress():  # a 2 MB write needs no progress bar of its own
            model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        save_facts(facts, out / FACTS_FILE)
        manifest = {"builder_version": BUILDER_VERSION, "seed": seed, "settings": s.to_dict(),
                    "prompt_format": fmt.name, "report": report.to_dict()}
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return report


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The build manifest of a tiny model folder, or None for other folders."""
    p = Path(folder) / MANIFEST
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None
