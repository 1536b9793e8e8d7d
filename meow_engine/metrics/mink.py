"""Membership scores on answer tokens: Min-K% (Shi et al. 2024) and Min-K%++ (Zhang et al. 2024).

They answer "does the model still treat these facts like training data?" without a retain
model: compare the scores of forget facts with those of held-out facts of the same kind. Scores
are oriented so that *higher = more member-like*; ``membership_auc`` is then P(member score >
non-member score), 0.5 = indistinguishable. Tokens scored are the answer tokens given the
question, including the learned EOS (the same tokens as the TOFU loss).

Min-K%++ per token: ``(log p(x_t) - mu_t) / sigma_t`` with ``mu_t = E_{z~p}[log p(z)]`` and
``sigma_t^2 = E_{z~p}[(log p(z) - mu_t)^2]`` under the next-token distribution at position t;
the score is the mean of the lowest k% token scores (k = 0.2). Min-K%: mean of the lowest k%
token log-probabilities (k = 0.4, open-unlearning's privleak setting).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import stats

from meow_engine.errors import ConfigError
from meow_engine.facts import Fact
from meow_engine.metrics import register_metric
from meow_engine.metrics.scoring import EVAL_MAX_LENGTH, iter_answer_logits
from meow_engine.models import LoadedModel

DEFAULT_K_PP = 0.2
DEFAULT_K = 0.4
_MIN_SIGMA = 1e-6


def lowest_k_mean(values: np.ndarray, k: float) -> float:
    """Mean of the lowest ``k`` fraction of values (at least one value)."""
    if not 0 < k <= 1:
        raise ConfigError(f"k must be in (0, 1], got {k}")
    if values.size == 0:
        raise ConfigError("no tokens to score")
    n = max(1, int(values.size * k))
    return float(np.sort(values)[:n].mean())


def token_statistics(logits: torch.Tensor, targets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-token log p(target) and Min-K%++ z-scores from next-token logits ``[n, V]``."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    probs = log_probs.exp()
    token_lp = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    mu = (probs * log_probs).sum(-1)
    var = (probs * (log_probs - mu.unsqueeze(-1)) ** 2).sum(-1)
    z = (token_lp - mu) / var.clamp_min(0).sqrt().clamp_min(_MIN_SIGMA)
    return token_lp.double().cpu().numpy(), z.double().cpu().numpy()


def membership_scores(
    lm: LoadedModel,
    facts: Sequence[Fact],
    k_pp: float = DEFAULT_K_PP,
    k: float = DEFAULT_K,
    max_length: int = EVAL_MAX_LENGTH,
    batch_size: int = 16,
) -> dict[str, np.ndarray]:
    """``{"mink_pp": [...], "mink": [...]}`` per fact, from one forward pass over the answers."""
    n = len(facts)
    pp = np.zeros(n)
    plain = np.zeros(n)
    for i, logits, targets in iter_answer_logits(lm, [f.question for f in facts], [f.answer for f in facts],
                                                 max_length, batch_size):
        lp, z = token_statistics(logits, targets)
        pp[i] = lowest_k_mean(z, k_pp)
        plain[i] = lowest_k_mean(lp, k)
    return {"mink_pp": pp, "mink": plain}


@register_metric("mink_pp", "LoadedModel, list[Fact]", "Min-K%++ membership score per fact (higher = member-like)")
def mink_pp_scores(lm: LoadedModel, facts: Sequence[Fact], k: float = DEFAULT_K_PP, **kw: int) -> np.ndarray:
    return membership_scores(lm, facts, k_pp=k, **kw)["mink_pp"]


@register_metric("mink", "LoadedModel, list[Fact]", "Min-K% membership score per fact (higher = member-like)")
def mink_scores(lm: LoadedModel, facts: Sequence[Fact], k: float = DEFAULT_K, **kw: int) -> np.ndarray:
    return membership_scores(lm, facts, k=k, **kw)["mink"]


@register_metric("membership_auc", "scores, scores", "AUC of member vs non-member scores (0.5 = indistinguishable)")
def membership_auc(member_scores: Sequence[float] | np.ndarray,
                   nonmember_scores: Sequence[float] | np.ndarray) -> float:
    """ROC AUC via the Mann-Whitney U statistic: P(member > non-member), ties count one half."""
    m = np.asarray(member_scores, dtype=np.float64)
    h = np.asarray(nonmember_scores, dtype=np.float64)
    if m.size == 0 or h.size == 0:
        raise ConfigError("membership AUC needs at least one member and one non-member score")
    if not (np.isfinite(m).all() and np.isfinite(h).all()):
        raise ConfigError("membership scores must be finite")
    u = stats.mannwhitneyu(m, h, alternative="two-sided").statistic
    return float(u / (m.size * h.size))
