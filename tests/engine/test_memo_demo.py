"""MEMO on ``demo:tiny``, the tiny Llama that memorized its facts: the engines agree (issue 2:
same per-window score on >= 99.5% of windows, mean |diff| < 1e-3) and memorized answers score
higher than other facts' answers."""

from __future__ import annotations

import pytest

from meow_engine.bench.memo_bench import bench_pairs
from meow_engine.config import MemoConfig
from meow_engine.memo import all_windows, memo_scores, predict_windows, rouge1_precision

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(request):
    try:
        return request.getfixturevalue("demo_tiny"), request.getfixturevalue("demo_tiny_facts")
    except pytest.FixtureLookupError:
        pytest.skip("demo_tiny fixture not available")


def test_engines_agree_on_demo_tiny(demo):
    import torch

    torch.set_num_threads(1)
    lm, facts = demo
    pairs = bench_pairs(facts, n_facts=5, n_texts=2)  # true answers + perturbed answers
    windows = all_windows(pairs)
    ref = predict_windows(lm, windows, MemoConfig(engine="reference"))
    bat = predict_windows(lm, windows, MemoConfig(engine="batched"))
    rs = [rouge1_precision(w.label, p) for w, p in zip(windows, ref, strict=True)]
    bs = [rouge1_precision(w.label, p) for w, p in zip(windows, bat, strict=True)]
    n = len(windows)
    assert n > 150
    assert sum(a == b for a, b in zip(rs, bs, strict=True)) / n >= 0.995
    assert sum(abs(a - b) for a, b in zip(rs, bs, strict=True)) / n < 1e-3
    assert sum(s > 0 for s in rs) > n // 4  # the model continues its facts: scores are not all zero


def test_memorized_answers_have_high_memo(demo):
    lm, facts = demo
    cfg = MemoConfig()
    true = memo_scores(lm, [(f.question, f.answer) for f in facts[:6]], cfg)
    other = memo_scores(lm, [(f.question, facts[(i + 1) % len(facts)].answer) for i, f in enumerate(facts[:6])], cfg)
    mean_true = sum(t.memo for t in true) / len(true)
    mean_other = sum(t.memo for t in other) / len(other)
    assert mean_true > 0.3 and mean_true > 1.5 * mean_other, (mean_true, mean_other)
