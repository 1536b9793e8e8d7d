"""Train until forgotten: the leakage audit between finetune rounds decides when to stop.

MEMO picks what to train on (the paper's selection); this module decides *how long*. The
finetune runs in rounds of ``target.round_epochs``; after each round every forget and retain probe
is re-run (``meow_engine.leakage``) and:

1. **retain floor**: if the retain probes that said their spans before now keep fewer than
   ``target.min_retain_kept`` of them, the model is rolled back to the last round that held the
   floor (the untrained state if none did) and training stops: the result says so;
   — unless it has backed off fewer than ``target.max_backoffs`` times: then the round is retried
   from the last good weights at half the lr (a step too large for what must be kept);
2. **target**: if the share of leaking probes over the trained forget facts is at most
   ``target.max_forget_leak_rate``, training stops: forgotten;
3. **escalation**: otherwise training goes on; when a round fixed no leaking probe, the lr is
   multiplied by ``target.lr_growth`` (up to ``target.max_lr_factor`` times the starting lr), since
   a step that moves nothing is a step too small rather than a fact that cannot move;
4. **budget**: ``target.max_rounds`` rounds (``finetune.max_steps`` caps it too); when it ends the
   result carries whatever was reached, with the verdict saying which facts still leak.

Facts found ``uninvertible`` are not trained on and do not hold the loop up; their own verdict
says why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from meow_engine.config import FinetuneConfig, UnlearnConfig
from meow_engine.facts import Fact
from meow_engine.leakage import (
    FORGOTTEN,
    ProbeRun,
    fact_verdict,
    kept_rate,
    leak_rate,
    run_probes,
    worst,
)
from meow_engine.models import LoadedModel
from meow_engine.progress import Reporter
from meow_engine.results import FactReport, ProbeOutcome, RoundRecord
from meow_engine.sensitive import Span
from meow_engine.training.trainer import RoundDecision

STAGE = "audit_round"
#: probe kinds whose answers count towards "retain kept": the question and the fact's own paraphrases
RETAIN_KEPT_KINDS = ("question", "paraphrase")
STOP_TARGET, STOP_FLOOR, STOP_BUDGET = "stop: target", "stop: retain floor (rolled back)", "stop: budget"


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reason: str
    target_met: bool


class RoundController:
    """Holds the before-audit, the rounds' records and the last good weights of one unlearn call."""

    def __init__(self, lm: LoadedModel, forget: Sequence[Fact], forget_spans: Sequence[Sequence[Span]],
                 retain: Sequence[Fact], retain_spans: Sequence[Sequence[Span]], config: UnlearnConfig,
                 reporter: Reporter) -> None:
        self.lm, self.forget, self.retain = lm, list(forget), list(retain)
        self.forget_spans, self.retain_spans = list(forget_spans), list(retain_spans)
        self.config, self.target, self.reporter = config, config.target, reporter
        self.active = config.target.enabled and config.leak_audit.enabled
        self.trained: list[int] = list(range(len(self.forget)))
        self.rounds: list[RoundRecord] = []
        self.before_f: list[list[ProbeRun]] | None = None
        self.before_r: list[list[ProbeRun]] | None = None
        self.after_f: list[list[ProbeRun]] | None = None
        self.after_r: list[list[ProbeRun]] | None = None
        self._snapshot: dict[str, torch.Tensor] | None = None
        self._prev_leaking: int | None = None
        self._lr_factor = 1.0
        self._backoffs = 0
        self._stopped: str | None = None

    # ------------------------------------------------------------ audits
    def _probe(self, lm: LoadedModel) -> tuple[list[list[ProbeRun]], list[list[ProbeRun]]]:
        la = self.config.leak_audit
        f = run_probes(lm, self.forget, self.forget_spans, la, samples=True)
        r = run_probes(lm, self.retain, self.retain_spans, la, samples=False) if self.retain else []
        return f, r

    def audit_before(self) -> None:
        self.before_f, self.before_r = self._probe(self.lm)
        self._prev_leaking = self._leaking(self.before_f)

    def _leaking(self, runs: Sequence[Sequence[ProbeRun]]) -> int:
        return sum(1 for i in self.trained for r in runs[i] if r.leaked)

    def _trained_leak_rate(self, runs: Sequence[Sequence[ProbeRun]]) -> float | None:
        return leak_rate([runs[i] for i in self.trained])

    def _kept(self, runs_r: Sequence[Sequence[ProbeRun]]) -> float | None:
        if not self.retain or self.before_r is None:
            return None
        return kept_rate(_uses(self.before_r), _uses(runs_r))

    # ------------------------------------------------------------ budget
    def round_steps(self, n_rows: int) -> int:
        ft = self.config.finetune
        return max(1, math.ceil(self.target.round_epochs * n_rows / (ft.batch_size * ft.grad_accum)))

    def finetune_config(self, n_rows: int) -> FinetuneConfig:
        """The finetune settings with the budget in steps: rounds × round length, capped by max_steps."""
        ft = self.config.finetune
        if not self.active:
            return ft
        per_round = self.round_steps(n_rows)
        budget = self.target.max_rounds * per_round
        if ft.max_steps is not None:
            budget = min(budget, ft.max_steps)
        # warm up within the first round, not over the whole budget (most of which a job never uses)
        warmup = ft.warmup_ratio * min(per_round, budget) / budget
        return ft.model_copy(update={"max_steps": budget, "warmup_ratio": warmup})

    # ------------------------------------------------------------ weights
    def _take_snapshot(self, model: Any) -> None:
        self._snapshot = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    def _restore(self, model: Any) -> None:
        if self._snapshot is None:
            return
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n in self._snapshot:
                    p.copy_(self._snapshot[n])

    # ------------------------------------------------------------ the loop
    def between_rounds(self, step: int, model: Any) -> RoundDecision:
        if step == 0:
            self._take_snapshot(model)
            return RoundDecision()
        self.reporter.check_stop()
        return self._check(step, model, final=False)

    def _check(self, step: int, model: Any, *, final: bool) -> RoundDecision:
        lm_now = replace(self.lm, model=model)
        runs_f, runs_r = self._probe(lm_now)
        leak = self._trained_leak_rate(runs_f)
        kept = self._kept(runs_r)
        leaking = self._leaking(runs_f)
        lr = self.config.finetune.effective_lr(_n_params(model)) * self._lr_factor
        record = RoundRecord(step=step, lr=lr, forget_leak_rate=leak, retain_kept=kept, leaking_probes=leaking,
                             decision="continue")
        decision = RoundDecision()
        if kept is not None and kept < self.target.min_retain_kept:
            self._restore(model)
            if final or self._backoffs >= self.target.max_backoffs:
                record.decision = STOP_FLOOR
                decision = RoundDecision(stop=True)
            else:  # the step was too large for what must be kept: retry the round from the last good weights
                self._backoffs += 1
                self._lr_factor *= 0.5
                record.decision = "back off: rolled back, lr x0.5 (retain floor)"
                decision = RoundDecision(lr_scale=0.5)
                leaking = self._prev_leaking if self._prev_leaking is not None else leaking
        elif leak is None or leak <= self.target.max_forget_leak_rate:
            record.decision = STOP_TARGET
            decision = RoundDecision(stop=True)
        elif final:
            record.decision = STOP_BUDGET
        else:
            self._take_snapshot(model)
            if self._prev_leaking is not None and leaking >= self._prev_leaking \
                    and self._lr_factor * self.target.lr_growth <= self.target.max_lr_factor:
                self._lr_factor *= self.target.lr_growth
                record.decision = f"escalate: lr x{self.target.lr_growth:g}"
                decision = RoundDecision(lr_scale=self.target.lr_growth)
        self._prev_leaking = leaking
        if decision.stop or final:
            self._stopped = record.decision
        self.rounds.append(record)
        self.reporter.emit(STAGE, len(self.rounds), self.target.max_rounds, record.decision,
                           forget_leak_rate=leak, retain_kept=kept, leaking_probes=leaking)
        return decision

    def finish(self, model: Any, steps: int) -> None:
        """After the last step: unless a round already stopped the loop, check (and maybe roll back) once more."""
        if self._stopped is None:
            self._check(steps, model, final=True)

    # ------------------------------------------------------------ results
    def audit_after(self, lm_after: LoadedModel, reports: list[FactReport]) -> None:
        """Probe the final model and write each fact's leak table and verdict (after ``audit_before``)."""
        if self.before_f is None:
            raise RuntimeError("audit_after needs audit_before: a verdict compares with what was said before")
        self.after_f, self.after_r = self._probe(lm_after)
        for rep, rb, ra in zip(reports, self.before_f, self.after_f, strict=True):
            rep.probes = [
                ProbeOutcome(kind=a.probe.kind, prompt=a.probe.prompt, sample=a.probe.sample, before=b.text,
                             after=a.text, leaked_before=list(b.leaked), leaked_after=list(a.leaked))
                for b, a in zip(rb, ra, strict=True)
            ]
            rep.leaks_before = sum(1 for b in rb if b.leaked)
            rep.leaks_after = sum(1 for a in ra if a.leaked)
            verdict, reason = fact_verdict(rb, ra)
            if rep.uninvertible is not None:
                reason = f"not trained on ({rep.uninvertible}); {reason}"
            rep.verdict, rep.verdict_reason = verdict, reason

    def forget_leak_rate(self, when: str) -> float | None:
        runs = self.before_f if when == "before" else self.after_f
        return leak_rate(runs) if runs is not None else None

    def retain_said_rate(self, when: str) -> float | None:
        runs = self.before_r if when == "before" else self.after_r
        return leak_rate(runs) if runs else None

    def retain_kept(self) -> float | None:
        return self._kept(self.after_r) if self.after_r is not None else None

    def verdict(self, reports: Sequence[FactReport], *, rows_trained: bool) -> Verdict:
        verdicts = [r.verdict or FORGOTTEN for r in reports]
        overall = worst(verdicts)
        n = len(reports)
        leaking = [r for r in reports if r.leaks_after]
        if not leaking:
            head = f"all {n} facts forgotten: no probe of {sum(len(r.probes) for r in reports)} says a sensitive span"
        else:
            names = "; ".join(f"fact {r.index}: {r.verdict_reason}" for r in leaking[:5])
            more = f" (and {len(leaking) - 5} more)" if len(leaking) > 5 else ""
            head = f"{len(leaking)} of {n} facts still leak — {names}{more}"
        tail = []
        uninv = [r.index for r in reports if r.uninvertible is not None]
        if uninv:
            tail.append(f"uninvertible, not trained on: facts {', '.join(map(str, uninv))}")
        if not rows_trained:
            tail.append("nothing was trained")
        if self._stopped == STOP_FLOOR:
            tail.append(f"stopped: training further would cross the retain floor "
                        f"({self.target.min_retain_kept:.0%} kept); rolled back to the last round that held it")
        elif self._stopped == STOP_BUDGET and leaking:
            tail.append(f"stopped: the budget ended ({len(self.rounds)} rounds)")
        kept = self.retain_kept()
        if kept is not None:
            tail.append(f"retain kept {kept:.0%}")
        leak_all = self.forget_leak_rate("after")
        target_met = (leak_all is not None and leak_all <= self.target.max_forget_leak_rate
                      and (kept is None or kept >= self.target.min_retain_kept))
        return Verdict(overall, "; ".join([head, *tail]), bool(target_met))


def _uses(runs: Sequence[Sequence[ProbeRun]]) -> list[list[ProbeRun]]:
    """The retain probes that are uses, not attacks or format shifts: extraction prefixes, raw text and
    engine rephrasings probe what a model gives away; a small model's answers there move with any
    finetune, and gating the floor on them would stop every job at its first round. They are still
    reported in each fact's probe table."""
    return [[r for r in rs if r.probe.kind in RETAIN_KEPT_KINDS] for rs in runs]


def _n_params(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["RoundController", "Verdict"]
