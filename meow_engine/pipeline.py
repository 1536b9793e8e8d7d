"""``unlearn()``: the whole MEOW request in one call, the function the CLI and workers run.

Stages (each timed and reported as progress): audit before (MEMO of the true answers, greedy
ROUGE-L recall on forget and retain facts, the leakage audit) → invert → MEMO of every candidate →
select (a fact with fewer than k valid inversions is ``uninvertible`` and not trained on) →
finetune in rounds, the leakage audit between rounds deciding when to stop → audit after →
verdict and oracle-free report. Baseline methods skip the inversion stages and train on the
true forget answers (plus retain rows when the method needs them), so every method is measured by
the same audit code.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from statistics import fmean

from meow_engine.config import UnlearnConfig
from meow_engine.errors import ConfigError, StopRequested
from meow_engine.facts import Fact
from meow_engine.models import LoadedModel, load_model
from meow_engine.progress import ProgressCallback, Reporter, StopCallback
from meow_engine.prompts import resolve_format
from meow_engine.results import FactReport, Inversion, SetSummary, SpanInfo, UnlearnResult

__all__ = ["unlearn", "UnlearnResult", "audit"]


class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - t0, 4)


def _mean(xs: Sequence[float]) -> float | None:
    return float(fmean(xs)) if xs else None


def audit(lm: LoadedModel, forget: Sequence[Fact], retain: Sequence[Fact], holdout: Sequence[Fact] | None,
          config: UnlearnConfig, reporter: Reporter, stage: str, memo: list[float] | None = None
          ) -> tuple[list[float], dict]:
    """MEMO of the true answers plus one ``probe_model`` pass (greedy ROUGE-L, answer probability,
    paraphrase probes, Min-K%++ membership vs held-out facts, retain probes), per fact.

    The probe is the single place generations are made, so the per-fact numbers of the result and
    the oracle-free report come from the same run. ``memo``: the true answers' MEMO when the caller
    already scored them (MEOW scores them with its candidates in one engine call).
    """
    from meow_engine.memo import compute_memo
    from meow_engine.metrics.report import ReportOptions, probe_model

    reporter.emit(stage, 0, 2)
    if memo is None:
        memo = [f.memo for f in compute_memo(lm, forget, config.memo, reporter=reporter).facts]
    reporter.check_stop()
    reporter.emit(stage, 1, 2)
    probe = probe_model(lm, forget, holdout_facts=holdout or None, retain_facts=retain or None,
                        options=ReportOptions(max_new_tokens=config.memo.max_new_tokens))
    reporter.emit(stage, 2, 2)
    return memo, probe


def _items(probe: dict, block: str, key: str) -> list:
    return list(probe.get(block, {}).get("items", {}).get(key, []))


def _without_items(probe: dict) -> dict:
    """The probe's headline numbers only: per-fact values already live in ``UnlearnResult.facts``."""
    return {k: ({kk: vv for kk, vv in v.items() if kk != "items"} if isinstance(v, dict) else v)
            for k, v in probe.items()}


def unlearn(
    model: LoadedModel | str,
    forget_facts: Sequence[Fact],
    retain_facts: Sequence[Fact] | None = None,
    config: UnlearnConfig | None = None,
    *,
    output_dir: str | Path | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
    holdout_facts: Sequence[Fact] | None = None,
) -> UnlearnResult:
    """Unlearn ``forget_facts`` from ``model``; returns every measured number, the verdict and the artifact.

    With ``config.target`` enabled (the default) the finetune runs in rounds with the leakage audit
    between them and stops as soon as the target holds (see ``meow_engine.rounds``).
    Raises ``StopRequested`` when ``should_stop`` turns true (nothing is saved then) and
    ``ConfigError`` for settings that cannot work (e.g. a baseline that needs retain facts).
    """
    from meow_engine.methods import METHODS
    from meow_engine.rounds import RoundController
    from meow_engine.sensitive import fact_spans, frame_words
    from meow_engine.training import TrainRow, finetune, save_artifact

    config = config or UnlearnConfig()
    forget_facts = list(forget_facts)
    retain_facts = list(retain_facts or [])
    if not forget_facts:
        raise ConfigError("no facts to forget")
    method_cls = METHODS.get(config.method)
    if method_cls.needs_retain and not retain_facts:
        raise ConfigError(f"method {config.method!r} needs retain facts")
    method_cls.Params(**config.method_params)  # validate early, before any expensive stage
    reporter = Reporter(progress, should_stop)
    timer = _Timer()

    with timer.stage("load_model"):
        lm = load_model(model) if isinstance(model, str) else model
        if config.prompt_format != "auto":
            lm = replace(lm, prompt_format=resolve_format(lm.tokenizer, config.prompt_format))

    frame = frame_words([*forget_facts, *retain_facts])  # the same vocabulary the inverter's screen uses
    forget_spans = [fact_spans(f, frame) for f in forget_facts]
    retain_spans = [fact_spans(f, frame) for f in retain_facts]
    reports = [FactReport(index=i, id=f.id, question=f.question, answer=f.answer,
                          spans=[SpanInfo(text=sp.text, kind=sp.kind, source=sp.source) for sp in spans])
               for i, (f, spans) in enumerate(zip(forget_facts, forget_spans, strict=True))]
    leak_on = config.leak_audit.enabled

    def audited(model_now: LoadedModel, when: str, memo: list[float] | None = None) -> tuple[list[float], dict]:
        """Audit ``model_now`` and copy its per-fact numbers into the reports' ``*_<when>`` fields."""
        if not config.audit:
            return [], {}
        with timer.stage(f"audit_{when}"):
            memo, probe = audit(model_now, forget_facts, retain_facts, holdout_facts, config, reporter,
                                f"audit_{when}", memo=memo)
        for r, m, score, gen in zip(reports, memo, _items(probe, "forget", "rougeL"),
                                    _items(probe, "forget", "generation"), strict=True):
            setattr(r, f"memo_{when}", m)
            setattr(r, f"rougeL_{when}", score)
            setattr(r, f"generation_{when}", gen)
        return memo, probe

    sets, cand_scores, truth_memo = None, None, None
    if method_cls.uses_inversions:  # inverted first, so MEMO scores the truth and the candidates in one call
        sets, cand_scores, truth_memo = _invert_and_score(lm, forget_facts, retain_facts, config, reporter, timer)
    memo_before, probe_before = audited(lm, "before", memo=truth_memo)
    reporter.check_stop()
    controller = RoundController(lm, forget_facts, forget_spans, retain_facts, retain_spans, config, reporter)
    if leak_on:
        with timer.stage("leak_audit_before"):
            controller.audit_before()
    reporter.check_stop()

    if method_cls.uses_inversions:
        rows = _inverted_rows(sets, cand_scores, forget_facts, config, reports, timer)
        if rows and config.train_raw:
            rows += [replace(r, raw=True) for r in dict.fromkeys(rows)]
        if rows and retain_facts and config.retain_anchor > 0:
            rows += _anchor_rows(retain_facts, round(config.retain_anchor * len(rows)))
    else:
        rows = [TrainRow(f.question, f.answer) for f in forget_facts]
    trained = sorted({i for i, r in enumerate(reports) if r.uninvertible is None})
    controller.trained = trained
    retain_rows = [TrainRow(f.question, f.answer) for f in retain_facts] if method_cls.needs_retain else None

    ft_config = controller.finetune_config(len(rows))
    training: dict = {"steps": 0, "losses": [], "seconds": 0.0, "stopped": False, "rows": len(rows)}
    artifact = None
    after_lm = lm
    if rows:
        with timer.stage("finetune"):
            ft = finetune(lm, rows, ft_config, method=config.method, method_params=config.method_params,
                          retain_rows=retain_rows, output_dir=None, reporter=reporter,
                          round_steps=controller.round_steps(len(rows)) if controller.active else None,
                          between_rounds=controller.between_rounds if controller.active else None)
        if ft.stopped:
            raise StopRequested("stop requested during finetune")
        after_lm = replace(lm, model=ft.model)
        if controller.active:
            with timer.stage("leak_audit_rounds_final"):
                controller.finish(ft.model, ft.steps)
        if output_dir is not None:
            artifact = save_artifact(ft.model, lm, ft_config, output_dir)
        training = {"steps": ft.steps, "losses": ft.losses, "seconds": ft.seconds, "stopped": ft.stopped,
                    "rows": len(rows), "budget_steps": ft.total_steps,
                    "lr_start": ft.learning_rates[0] if ft.learning_rates else None,
                    "lr_last": ft.learning_rates[-1] if ft.learning_rates else None}

    memo_after, probe_after = audited(after_lm, "after")
    if leak_on:
        with timer.stage("leak_audit_after"):
            controller.audit_after(after_lm, reports)
    report: dict = {}
    if config.audit:
        from meow_engine.metrics.report import report_deltas

        report = {"before": _without_items(probe_before), "after": _without_items(probe_after),
                  "delta": report_deltas(probe_before, probe_after)}
        report["delta"]["forget_memo"] = _mean(memo_after) - _mean(memo_before)  # type: ignore[operator]

    verdict = controller.verdict(reports, rows_trained=bool(rows)) if leak_on else None
    return UnlearnResult(
        method=config.method,
        model=lm.ref,
        verdict=verdict.verdict if verdict else None,
        verdict_reason=verdict.reason if verdict else "leakage audit disabled: nothing was measured to decide",
        target_met=verdict.target_met if verdict else None,
        rounds=controller.rounds,
        forget=SetSummary(n_facts=len(forget_facts), memo_before=_mean(memo_before), memo_after=_mean(memo_after),
                          rougeL_before=_mean(_items(probe_before, "forget", "rougeL")),
                          rougeL_after=_mean(_items(probe_after, "forget", "rougeL")),
                          leak_rate_before=controller.forget_leak_rate("before"),
                          leak_rate_after=controller.forget_leak_rate("after")),
        retain=SetSummary(n_facts=len(retain_facts), rougeL_before=_mean(_items(probe_before, "retain", "rougeL")),
                          rougeL_after=_mean(_items(probe_after, "retain", "rougeL")),
                          leak_rate_before=controller.retain_said_rate("before"),
                          leak_rate_after=controller.retain_said_rate("after"),
                          kept=controller.retain_kept()) if retain_facts else None,
        facts=reports,
        report=report,
        training=training,
        artifact=artifact,
        output_dir=str(output_dir) if output_dir is not None else None,
        timings=timer.timings,
        config=config.model_dump(mode="json"),
    )


def _invert_and_score(lm: LoadedModel, forget: list[Fact], retain: list[Fact], config: UnlearnConfig,
                      reporter: Reporter, timer: _Timer) -> tuple[list, list, list[float] | None]:
    """Invert, then MEMO of every candidate and (when audited) of the true answers in one engine call.

    Returns the inversion sets, the candidates' scores (flat, in set order) and the true answers'
    MEMO (None without audit). One call lets the engine batch all windows together, and a true
    answer is a good speculative draft for its own inversions.
    """
    from meow_engine.inverters import invert, mark_uninvertible
    from meow_engine.memo import memo_scores_groups

    with timer.stage("invert"):
        sets = invert(forget, config.inverter, context_facts=retain, reporter=reporter, lm=lm)
        mark_uninvertible(sets, config.selection.k)
    reporter.check_stop()
    pairs = [(forget[s.fact_index].question, c) for s in sets for c in s.candidates]
    truth = [(f.question, f.answer) for f in forget] if config.audit else []
    with timer.stage("memo_candidates"):
        truth_scored, scored = memo_scores_groups(lm, [truth, pairs], config.memo, reporter=reporter) \
            if pairs or truth else ([], [])
    return sets, list(scored), [t.memo for t in truth_scored] if config.audit else None


def _inverted_rows(sets: list, scored: list, forget: list[Fact], config: UnlearnConfig,
                   reports: list[FactReport], timer: _Timer) -> list:
    """Select top-k of each fact's scored candidates → round-robin training rows."""
    from meow_engine.selection import select_candidates, training_rows
    from meow_engine.training import TrainRow

    rows = []
    pos = 0
    with timer.stage("select"):
        for s in sets:
            scores = [t.memo for t in scored[pos : pos + len(s.candidates)]]
            pos += len(s.candidates)
            report = reports[s.fact_index]
            report.inverter_raw = s.raw
            report.flags = list(s.flags)
            if s.uninvertible is not None:  # mark_uninvertible flagged it: fewer than k valid candidates
                report.uninvertible = s.uninvertible
                report.inversions = [Inversion(text=c, memo=m) for c, m in zip(s.candidates, scores, strict=True)]
                continue
            chosen = select_candidates(scores, config.selection, s.fact_index)
            report.inversions = [
                Inversion(text=c, memo=m, selected=i in chosen, rank=chosen.index(i) + 1 if i in chosen else None)
                for i, (c, m) in enumerate(zip(s.candidates, scores, strict=True))
            ]
            for j in training_rows(chosen, config.selection.rows_per_qa):
                rows.append(TrainRow(forget[s.fact_index].question, s.candidates[j]))
    return rows


def _anchor_rows(retain: Sequence[Fact], n: int) -> list:
    """``n`` retain rows with their true answers, cycling through the retain facts in order."""
    from meow_engine.training import TrainRow

    return [TrainRow(retain[i % len(retain)].question, retain[i % len(retain)].answer, raw=bool(i // len(retain) % 2))
            for i in range(n)]
