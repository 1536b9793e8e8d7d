"""Selection of inverted candidates: clean top-k, the reference's quirks behind compat, round-robin rows."""

from __future__ import annotations

import heapq
import random

import pytest

from meow_engine.config import SelectionConfig
from meow_engine.errors import ConfigError
from meow_engine.selection import select_candidates, training_rows


def cfg(**kw) -> SelectionConfig:
    return SelectionConfig(**kw)


def reference_rows(scores: list[float], top_k: int, metric: str) -> list[int]:
    """Literal transcription of the reference ``meow_memo`` branch (meow-method.md §5), as an oracle:
    select values, map each to the first equal key, build 8 rows by ``top_keys[i % top_k]`` with the
    ``answer_0`` fallback, and keep the first 4 (the only group ``compute_loss`` uses)."""
    keys = [f"answer_{i}_rouge1" for i in range(len(scores))]
    data = dict(zip(keys, scores, strict=True))
    if metric == "smallest":
        values = heapq.nsmallest(top_k, (data[k] for k in keys))
    elif metric == "largest":
        values = heapq.nlargest(top_k, (data[k] for k in keys))
    else:
        random.seed(42)
        cands = [data[k] for k in keys]
        if len(cands) < top_k:
            cands += [data["answer_0_rouge1"]] * (top_k - len(cands))
        values = random.sample(cands, top_k)
    top_keys = []
    for v in values:
        for k in keys:
            if data[k] == v:
                top_keys.append(k)
                break
    rows = []
    for i in range(8):
        try:
            rows.append(int(top_keys[i % top_k].split("_")[1]))
        except IndexError:
            rows.append(0)
    return rows[:4]


def test_largest_and_smallest_rank_by_score_ties_to_lower_index():
    scores = [0.5, 0.3, 0.6, 0.5, 0.3]
    assert select_candidates(scores, cfg(k=3, order="largest"), 0) == [2, 0, 3]
    assert select_candidates(scores, cfg(k=4, order="largest"), 0) == [2, 0, 3, 1]
    assert select_candidates(scores, cfg(k=3, order="smallest"), 0) == [1, 4, 0]
    assert select_candidates(scores, cfg(k=1, order="smallest"), 0) == [1]


def test_clean_selection_is_distinct_even_with_all_scores_tied():
    chosen = select_candidates([0.2] * 4, cfg(k=4, order="largest"), 7)
    assert chosen == [0, 1, 2, 3]


def test_doc_example_tie_quirk_only_in_reference_mode():
    # forget01 item 2 in the reference: two tied candidates give [answer_2, answer_0, answer_0].
    scores = [0.5, 0.3, 0.6, 0.5]
    assert select_candidates(scores, cfg(k=3, order="largest", compat="reference"), 2) == [2, 0, 0]
    assert select_candidates(scores, cfg(k=3, order="largest"), 2) == [2, 0, 3]


def test_k_larger_than_candidates_is_an_error_naming_the_fact():
    with pytest.raises(ConfigError, match=r"fact 3 has 2 candidates, selection.k is 3"):
        select_candidates([0.1, 0.2], cfg(k=3), 3)
    with pytest.raises(ConfigError, match="fact 0 has 0 candidates"):
        select_candidates([], cfg(k=1, order="random"), 0)


def test_nan_score_is_rejected():
    with pytest.raises(ConfigError, match="candidate 1 has no score"):
        select_candidates([0.1, float("nan"), 0.3], cfg(k=2), 5)


def test_random_is_distinct_seeded_per_item_and_independent_of_other_items():
    c = cfg(k=3, order="random", seed=7)
    draws = {i: select_candidates([0.0] * 6, c, i) for i in range(20)}
    for d in draws.values():
        assert len(set(d)) == 3 and all(0 <= x < 6 for x in d)
    assert select_candidates([0.0] * 6, c, 4) == draws[4]  # deterministic
    assert len({tuple(d) for d in draws.values()}) > 5  # items do not all draw the same positions
    # a different seed changes the draw for at least one item
    other = [select_candidates([0.0] * 6, cfg(k=3, order="random", seed=8), i) for i in range(20)]
    assert other != list(draws.values())
    # the scores themselves do not matter for random
    assert select_candidates([0.9, 0.1, 0.5, 0.2, 0.3, 0.4], c, 4) == draws[4]


def test_reference_random_reseeds_per_item():
    c = cfg(k=3, order="random", compat="reference")
    scores = [0.11, 0.22, 0.33, 0.44, 0.55]
    a = select_candidates(scores, c, 0)
    b = select_candidates(scores, c, 9)
    assert a == b  # same candidate count → same positions, as the reference
    state = random.getstate()
    random.seed(42)
    expected = [scores.index(v) for v in random.sample(scores, 3)]
    random.setstate(state)
    assert a == expected


@pytest.mark.parametrize("k,expected", [(1, ["r1"] * 4), (2, ["r1", "r2", "r1", "r2"]),
                                        (3, ["r1", "r2", "r3", "r1"]), (4, ["r1", "r2", "r3", "r4"])])
def test_training_rows_round_robin_matches_the_doc_table(k, expected):
    names = ["r1", "r2", "r3", "r4"][:k]
    assert [names[i] for i in training_rows(list(range(k)), 4)] == expected


def test_training_rows_equal_weights_when_rows_equal_k_and_rejects_empty():
    assert training_rows([5, 2, 9], 3) == [5, 2, 9]
    assert training_rows([5, 2, 9], 7) == [5, 2, 9, 5, 2, 9, 5]
    with pytest.raises(ConfigError):
        training_rows([], 4)


def test_reference_mode_reproduces_the_reference_rows_on_random_score_lists():
    rng = random.Random(0)
    checked = ties = 0
    for trial in range(400):
        n = rng.randint(1, 6)
        # coarse scores so that ties are frequent
        scores = [rng.randint(0, 4) / 4 for _ in range(n)]
        k = rng.randint(1, 4)
        metric = rng.choice(["largest", "smallest", "random"])
        sel = select_candidates(scores, cfg(k=k, order=metric, compat="reference"), trial)
        assert training_rows(sel, 4) == reference_rows(scores, k, metric), (scores, k, metric)
        checked += 1
        ties += len(set(sel)) < len(sel)
    assert checked == 400 and ties > 20  # the quirk was really exercised


def test_clean_mode_equals_reference_without_ties():
    rng = random.Random(1)
    for _ in range(200):
        n = rng.randint(4, 8)
        scores = rng.sample(range(1000), n)
        k = rng.randint(1, 4)
        for metric in ("largest", "smallest"):
            clean = select_candidates(scores, cfg(k=k, order=metric), 0)
            assert training_rows(clean, 4) == reference_rows(scores, k, metric)
