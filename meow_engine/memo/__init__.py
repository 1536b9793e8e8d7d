"""MEMO, MEOW's memorization score (meow-method.md §3-4), with a reference and a batched engine.

``memo_scores(lm, pairs, config)`` scores (question, text) pairs; ``compute_memo(lm, facts, config)``
scores facts and returns a ``MemoResult``. ``MemoConfig.engine`` picks ``batched`` (default) or
``reference``; ``MemoConfig.parity`` switches to the reference's decoding of predictions.
"""

from meow_engine.memo.batched import auto_batch_size, predict_windows_batched
from meow_engine.memo.compute import ENGINES, TextMemo, compute_memo, memo_scores, predict_windows, score_windows
from meow_engine.memo.decoding import decode_prediction, encode_prompts, greedy_config, stop_ids
from meow_engine.memo.reference import predict_windows_reference
from meow_engine.memo.scoring import rouge1_precision
from meow_engine.memo.windows import Window, all_windows, cut_points, text_windows

__all__ = [
    "ENGINES",
    "TextMemo",
    "Window",
    "all_windows",
    "auto_batch_size",
    "compute_memo",
    "cut_points",
    "decode_prediction",
    "encode_prompts",
    "greedy_config",
    "memo_scores",
    "rouge1_precision",
    "predict_windows",
    "predict_windows_batched",
    "predict_windows_reference",
    "score_windows",
    "stop_ids",
    "text_windows",
]
