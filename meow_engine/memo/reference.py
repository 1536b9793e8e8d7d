"""The reference MEMO engine: one ``generate`` per window, batch size 1, as ``memo/memo.py`` runs.

It exists as the ground truth the batched engine is checked against (and for parity runs that
want the reference's exact execution shape); it is far too slow for production use.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from meow_engine.config import MemoConfig
from meow_engine.memo.decoding import decode_prediction, encode_prompts, eval_mode, greedy_config, stop_ids
from meow_engine.memo.windows import Window
from meow_engine.models import LoadedModel
from meow_engine.progress import NULL_REPORTER, Reporter


@torch.inference_mode()
def predict_windows_reference(lm: LoadedModel, windows: Sequence[Window], config: MemoConfig,
                            reporter: Reporter | None = None) -> list[str]:
    """The prediction string of each window, generating one window at a time."""
    reporter = reporter or NULL_REPORTER
    gc = greedy_config(lm, config.max_new_tokens)
    stops = stop_ids(lm)
    preds: list[str] = []
    with eval_mode(lm.model):
        for n, w in enumerate(windows):
            reporter.check_stop()
            (ids,) = encode_prompts(lm.tokenizer, [w.prompt])
            input_ids = torch.tensor([ids], device=lm.device)
            out = lm.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                    generation_config=gc)
            preds.append(decode_prediction(lm.tokenizer, w.prompt, ids, out[0, len(ids):].tolist(), stops,
                                           config.parity))
            reporter.emit("memo", n + 1, len(windows))
    return preds
