"""MEMO over texts: windows -> engine -> per-window scores -> mean per text.

``memo_scores`` takes every (question, text) pair at once so the batched engine can fill its
batches with windows from many texts; the pipeline scores all candidate inversions of all facts
in a single call. ``compute_memo`` wraps it for facts and returns the stored result record.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from meow_engine.config import MemoConfig
from meow_engine.errors import ConfigError
from meow_engine.facts import Fact
from meow_engine.memo.batched import predict_windows_batched, predict_windows_speculative
from meow_engine.memo.reference import predict_windows_reference
from meow_engine.memo.scoring import rouge1_precision
from meow_engine.memo.windows import Window, all_windows
from meow_engine.models import LoadedModel
from meow_engine.progress import NULL_REPORTER, Reporter
from meow_engine.results import FactMemo, MemoResult

#: an engine maps windows to the model's prediction string for each (input order)
WindowPredictor = Callable[[LoadedModel, Sequence[Window], MemoConfig, Reporter | None], list[str]]

ENGINES: dict[str, WindowPredictor] = {
    "reference": predict_windows_reference,
    "speculative": predict_windows_speculative,
    "batched": predict_windows_batched,
}


@dataclass
class MemoMeter:
    """Time spent in ``memo_scores`` while the meter is open (``memo_meter()``), all callers included.

    The pipeline times its stages, but the MEMO inside an audit shares a stage with the probe pass;
    the meter measures MEMO wherever it runs, which is how ``meow bench memo`` reports MEMO's share
    of a whole job without the pipeline knowing about it.
    """

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    calls: int = 0
    windows: int = 0


_METERS: ContextVar[tuple[MemoMeter, ...]] = ContextVar("memo_meters", default=())


@contextmanager
def memo_meter() -> Iterator[MemoMeter]:
    """Open a ``MemoMeter`` for the calls made in this context (meters nest)."""
    meter = MemoMeter()
    token = _METERS.set((*_METERS.get(), meter))
    try:
        yield meter
    finally:
        _METERS.reset(token)


@dataclass
class TextMemo:
    """MEMO of one text: the mean of its per-window ROUGE-1 precisions (0.0 when it has no window,
    i.e. the cut string is shorter than 2 characters)."""

    memo: float
    windows: list[float] = field(default_factory=list)

    @property
    def n_windows(self) -> int:
        return len(self.windows)


def predict_windows(lm: LoadedModel, windows: Sequence[Window], config: MemoConfig | None = None,
                    reporter: Reporter | None = None) -> list[str]:
    """Per-window prediction strings from the engine ``config.engine`` names."""
    config = config or MemoConfig()
    try:
        engine = ENGINES[config.engine]
    except KeyError:
        raise ConfigError(f"unknown MEMO engine {config.engine!r}; known: {', '.join(ENGINES)}") from None
    return engine(lm, windows, config, reporter or NULL_REPORTER)


def score_windows(lm: LoadedModel, windows: Sequence[Window], config: MemoConfig | None = None,
                  reporter: Reporter | None = None) -> list[float]:
    """Per-window ROUGE-1 precision of the prediction against the label."""
    preds = predict_windows(lm, windows, config, reporter)
    return [rouge1_precision(w.label, p) for w, p in zip(windows, preds, strict=True)]


def memo_scores(lm: LoadedModel, pairs: Sequence[tuple[str, str]], config: MemoConfig | None = None,
                reporter: Reporter | None = None) -> list[TextMemo]:
    """MEMO of each (question, text) pair, in input order."""
    config = config or MemoConfig()
    for i, (question, text) in enumerate(pairs):
        if not isinstance(question, str) or not isinstance(text, str):
            raise ConfigError(f"MEMO pair {i}: question and text must be strings")
    windows = all_windows(pairs, config.mode, config.stride)
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        scores = score_windows(lm, windows, config, reporter)
    finally:
        for meter in _METERS.get():
            meter.seconds += time.perf_counter() - start
            meter.cpu_seconds += time.process_time() - cpu_start
            meter.calls += 1
            meter.windows += len(windows)
    per_text: list[list[float]] = [[] for _ in pairs]
    for w, s in zip(windows, scores, strict=True):
        per_text[w.text_index].append(s)
    return [TextMemo(memo=sum(ws) / len(ws) if ws else 0.0, windows=ws) for ws in per_text]


def memo_scores_groups(lm: LoadedModel, groups: Sequence[Sequence[tuple[str, str]]],
                       config: MemoConfig | None = None, reporter: Reporter | None = None) -> list[list[TextMemo]]:
    """``memo_scores`` of several lists of pairs in one engine call, split back per list.

    One call lets the engine batch all windows together and share drafts between texts of the same
    question (e.g. a job's true answers, audited before unlearning, and its inverted candidates);
    each text's windows are decoded exactly as in a call of its own.
    """
    flat = [pair for group in groups for pair in group]
    scored = memo_scores(lm, flat, config, reporter)
    out: list[list[TextMemo]] = []
    pos = 0
    for group in groups:
        out.append(scored[pos: pos + len(group)])
        pos += len(group)
    return out


def compute_memo(lm: LoadedModel, facts: Sequence[Fact], config: MemoConfig | None = None,
                 reporter: Reporter | None = None, texts: Sequence[str] | None = None) -> MemoResult:
    """MEMO of each fact's answer (or of ``texts[i]`` for fact i, e.g. an inverted answer)."""
    config = config or MemoConfig()
    if texts is not None and len(texts) != len(facts):
        raise ConfigError(f"{len(texts)} texts given for {len(facts)} facts")
    scored = list(texts) if texts is not None else [f.answer for f in facts]
    start = time.perf_counter()
    results = memo_scores(lm, [(f.question, t) for f, t in zip(facts, scored, strict=True)], config, reporter)
    seconds = time.perf_counter() - start
    fact_memos = [
        FactMemo(index=i, id=f.id, question=f.question, text=t, memo=r.memo, n_windows=r.n_windows,
                 windows=r.windows)
        for i, (f, t, r) in enumerate(zip(facts, scored, results, strict=True))
    ]
    mean = sum(r.memo for r in results) / len(results) if results else 0.0
    return MemoResult(mean=mean, mode=config.mode, engine=config.engine, facts=fact_memos, seconds=seconds,
                      windows_total=sum(r.n_windows for r in results))
