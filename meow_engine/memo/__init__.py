"""MEMO, MEOW's memorization score (meow-method.md §3-4), with a reference and a batched engine.

``memo_scores(lm, pairs, config)`` scores (question, text) pairs; ``memo_scores_groups`` scores
several lists of pairs in one engine call; ``compute_memo(lm, facts, config)`` scores facts and
returns a ``MemoResult``. ``MemoConfig.engine`` picks ``speculative`` (default: the batched engine
drafting each window's continuation from its own text), ``batched`` or ``reference``;
``MemoConfig.parity`` switches to the reference's decoding of predictions.
"""

from meow_engine.memo.batched import auto_batch_size, predict_windows_batched, predict_windows_speculative
from meow_engine.memo.compute import (
    ENGINES,
    MemoMeter,
    TextMemo,
    compute_memo,
    memo_meter,
    memo_scores,
    memo_scores_groups,
    predict_windows,
    score_windows,
)
from meow_engine.memo.decoding import decode_prediction, encode_prompts, greedy_config, stop_ids
from meow_engine.memo.reference import predict_windows_reference
from meow_engine.memo.scoring import rouge1_precision
from meow_engine.memo.windows import Window, all_windows, cut_points, text_windows

__all__ = [
    "ENGINES",
    "MemoMeter",
    "TextMemo",
    "Window",
    "all_windows",
    "auto_batch_size",
    "compute_memo",
    "cut_points",
    "decode_prediction",
    "encode_prompts",
    "greedy_config",
    "memo_meter",
    "memo_scores",
    "memo_scores_groups",
    "rouge1_precision",
    "predict_windows",
    "predict_windows_batched",
    "predict_windows_speculative",
    "predict_windows_reference",
    "score_windows",
    "stop_ids",
    "text_windows",
]
