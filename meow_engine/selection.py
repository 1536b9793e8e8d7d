"""Choosing which inverted candidates a fact is trained on (MEOW's top-k by MEMO).

Two behaviours, picked by ``SelectionConfig.compat``:

* ``clean`` (default): rank the candidates by score (descending for ``largest``, ascending for
  ``smallest``), break ties by the lower candidate index, and take k *distinct* candidates;
  ``random`` draws k distinct candidates from a per-item RNG seeded by ``(seed, item index)`` so a
  fact's draw does not depend on how many facts come before it or on their candidate counts.
  Asking for more candidates than a fact has is an error, never a silent cut.
* ``reference``: the reference code's behaviour, for parity runs only (meow-method.md §5): top-k
  over the score *values* (``heapq``), each value mapped back to the *first* candidate with an
  equal score, so tied scores yield duplicates; ``random`` re-seeds ``random.seed(42)`` for every
  item; too few candidates are padded with candidate 0 the way the reference falls back to
  ``answer_0``.

``training_rows`` turns the selection into the per-fact training multiset by round-robin over the
ranks (r1..rk, r1, ...), which equals the reference's ``top_keys[i % top_k]`` cycling over the
first four of its eight rows for every k ≤ 4.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence

import numpy as np

from meow_engine.config import SelectionConfig
from meow_engine.errors import ConfigError

__all__ = ["select_candidates", "training_rows"]


def select_candidates(scores: Sequence[float], config: SelectionConfig, item_index: int) -> list[int]:
    """Candidate indices chosen for one fact, best rank first (length ``config.k``)."""
    scores = [float(s) for s in scores]
    if config.compat == "reference":
        return _reference_selection(scores, config.k, config.order)
    n, k = len(scores), config.k
    if k > n:
        raise ConfigError(f"fact {item_index} has {n} candidate{'s' if n != 1 else ''}, selection.k is {k}")
    if config.order == "random":
        rng = np.random.default_rng([int(config.seed), int(item_index)])
        return [int(i) for i in rng.choice(n, size=k, replace=False)]
    for i, s in enumerate(scores):
        if math.isnan(s):
            raise ConfigError(f"fact {item_index}: candidate {i} has no score (NaN)")
    if config.order == "largest":
        order = sorted(range(n), key=lambda i: (-scores[i], i))
    else:
        order = sorted(range(n), key=lambda i: (scores[i], i))
    return order[:k]


def training_rows(selected: list[int], rows_per_qa: int) -> list[int]:
    """Round-robin over the selected ranks: r1..rk, r1, ... (``rows_per_qa`` entries)."""
    if not selected:
        raise ConfigError("no candidates selected")
    if rows_per_qa < 1:
        raise ConfigError(f"rows_per_qa must be ≥ 1, got {rows_per_qa}")
    return [selected[i % len(selected)] for i in range(rows_per_qa)]


def _reference_selection(scores: list[float], top_k: int, order: str) -> list[int]:
    """``TextForgetDatasetMeow.__getitem__`` (meow_memo branch), quirks included."""
    if not scores:
        raise ConfigError("reference selection needs at least one candidate")
    if order == "largest":
        values = heapq.nlargest(top_k, scores)
    elif order == "smallest":
        values = heapq.nsmallest(top_k, scores)
    else:
        # The reference calls random.seed(42) before every item; a fresh Random(42) draws the
        # same sample without touching the global RNG.
        candidates = list(scores)
        if len(candidates) < top_k:
            candidates += [scores[0]] * (top_k - len(candidates))
        values = random.Random(42).sample(candidates, top_k)
    keys = [next(i for i, s in enumerate(scores) if s == v) for v in values]
    # Fewer keys than top_k: the reference's `top_keys[i % top_k]` raises IndexError and falls
    # back to answer_0 for those rows; padding with candidate 0 reproduces the same rows.
    return keys + [0] * (top_k - len(keys))
