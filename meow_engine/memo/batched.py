"""The batched MEMO engine: many windows of many texts decoded together.

Why it gives the reference's numbers (meow-method.md §4): greedy decoding is a function of each
row's own tokens. Prompts are tokenised one by one (ids independent of the batch), left-padded
with an attention mask, and positions are counted over each row's real tokens, so every row sees
its own prompt at the same positions as at batch size 1 and extends it from its own last token.
Each row is cut at its first stop token before decoding. Only floating-point reduction order
differs from batch size 1, which can flip a near-tied argmax (rare in fp32).

Speed comes from: continuous batching where the model allows it (``continuous.py``: a row leaves
the batch at EOS and new windows take its place, so compute follows the tokens really generated),
else ``generate`` on fixed batches; length bucketing (windows sorted by prompt length, longest
first, so padding is small and an out-of-memory error shows up on the first batch); the KV cache;
and a batch size sized from free memory, halved on CUDA OOM without redoing finished windows.
``speculative=True`` (engine ``speculative``, the default) adds reference drafting on top of
continuous batching (``speculative.py``): each window's own text is its draft.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from meow_engine.config import MemoConfig
from meow_engine.memo.continuous import continuous_greedy, supports_continuous
from meow_engine.memo.decoding import decode_prediction, encode_prompts, eval_mode, greedy_config, stop_ids
from meow_engine.memo.speculative import encode_plain, predict_speculative
from meow_engine.memo.windows import Window
from meow_engine.models import LoadedModel
from meow_engine.progress import NULL_REPORTER, Reporter

#: CPU batches beyond this stop paying off (the matmuls are already wide) and cost memory other
#: processes may need; continuous batching keeps a large batch full, so it may be large.
CPU_MAX_BATCH = 1024
GPU_MAX_BATCH = 1024


def _available_cpu_bytes() -> int:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def _bytes_per_row(model: Any, dtype: torch.dtype, tokens: int) -> int:
    """KV cache + per-step logits + prefill activations of one row, roughly."""
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    layers = getattr(cfg, "num_hidden_layers", 12)
    heads = getattr(cfg, "num_attention_heads", 12)
    kv_heads = getattr(cfg, "num_key_value_heads", None) or heads
    hidden = getattr(cfg, "hidden_size", 768)
    head_dim = getattr(cfg, "head_dim", None) or hidden // heads
    vocab = getattr(cfg, "vocab_size", 32000)
    elem = torch.empty((), dtype=dtype).element_size()
    kv = 2 * layers * kv_heads * head_dim * elem * tokens
    logits = vocab * 4 * 3  # fp32 logits, processed scores, argmax scratch
    activations = tokens * (hidden * 8 + getattr(cfg, "intermediate_size", 4 * hidden) * 2) * elem
    return kv + logits + activations


def auto_batch_size(lm: LoadedModel, max_prompt_len: int, max_new_tokens: int) -> int:
    """Windows per forward that fit comfortably in free memory (CUDA) or a CPU-friendly cap."""
    per_row = _bytes_per_row(lm.model, lm.dtype, max_prompt_len + max_new_tokens)
    if lm.device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(lm.device)
        return max(1, min(GPU_MAX_BATCH, int(free * 0.6) // per_row))
    return max(1, min(CPU_MAX_BATCH, int(_available_cpu_bytes() * 0.25) // per_row))


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or "out of memory" in str(e).lower()


def _generate(lm: LoadedModel, prompts: Sequence[list[int]], gc: Any) -> torch.Tensor:
    """Left-pad the prompts and ``generate``; returns the ids after the prompt width (pads after EOS)."""
    width = max(len(p) for p in prompts)
    pad = lm.tokenizer.pad_token_id
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, p in enumerate(prompts):
        ids[row, width - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[row, width - len(p):] = 1
    out = lm.model.generate(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device), generation_config=gc)
    return out[:, width:].cpu()


def predict_windows_speculative(lm: LoadedModel, windows: Sequence[Window], config: MemoConfig,
                                reporter: Reporter | None = None) -> list[str]:
    """The batched engine with reference-drafted speculative decoding (``speculative.py``)."""
    return predict_windows_batched(lm, windows, config, reporter, speculative=True)


def _text_ids(lm: LoadedModel, windows: Sequence[Window]) -> tuple[list[list[int]], list[int], list[int]]:
    """The windows' texts (``prompt + label``) tokenised once each: (ids per text, text of each
    window, question group of each text)."""
    first: dict[int, Window] = {}
    for w in windows:
        first.setdefault(w.text_index, w)
    keys = list(first)
    encoded = encode_prompts(lm.tokenizer, [first[k].text for k in keys])
    slot = {k: n for n, k in enumerate(keys)}
    groups = []
    for k in keys:
        q = first[k].question_index
        groups.append(slot.get(q, slot[k]) if q is not None else slot[k])
    return encoded, [slot[w.text_index] for w in windows], groups


@torch.inference_mode()
def predict_windows_batched(lm: LoadedModel, windows: Sequence[Window], config: MemoConfig,
                            reporter: Reporter | None = None, continuous: bool | None = None,
                            speculative: bool = False) -> list[str]:
    """The prediction string of each window (input order).

    ``continuous`` (default: whenever the model supports it) decodes with continuous batching;
    otherwise windows go through ``generate`` in fixed length-bucketed batches. ``speculative``
    drafts each window's continuation from the text it was cut from (continuous batching only).
    """
    reporter = reporter or NULL_REPORTER
    if not windows:
        return []
    stops = stop_ids(lm)
    prompt_ids = encode_prompts(lm.tokenizer, [w.prompt for w in windows])
    order = sorted(range(len(windows)), key=lambda i: -len(prompt_ids[i]))
    batch_size = config.batch_size or auto_batch_size(lm, len(prompt_ids[order[0]]), config.max_new_tokens)
    if continuous is None:
        continuous = supports_continuous(lm.model)
    preds: list[str | None] = [None] * len(windows)
    progress = _Progress(reporter, len(windows))
    text_ids: list[list[int]] | None = None
    text_of: list[int] = []
    question_of: list[int] = []
    label_ids: list[list[int]] = []

    def finish(i: int, gen_ids: list[int]) -> None:
        preds[i] = decode_prediction(lm.tokenizer, windows[i].prompt, prompt_ids[i], gen_ids, stops, config.parity)
        progress.advance(batch_size)

    with eval_mode(lm.model):
        while True:
            todo = [i for i in order if preds[i] is None]
            if not todo:
                break
            try:
                if continuous and speculative:
                    if text_ids is None:
                        text_ids, text_of, question_of = _text_ids(lm, windows)
                        label_ids = encode_plain(lm.tokenizer, [w.label for w in windows])
                    predict_speculative(
                        lm.model, lm.tokenizer, [prompt_ids[i] for i in todo], text_ids, [text_of[i] for i in todo],
                        question_of, [label_ids[i] for i in todo], max_new_tokens=config.max_new_tokens,
                        stops=stops, batch_size=batch_size, device=lm.device,
                        on_done=lambda j, ids, todo=todo: finish(todo[j], ids), check_stop=reporter.check_stop,
                    )
                elif continuous:
                    # windows of one text together, so they share their prompt prefix's prefill
                    todo.sort(key=lambda i: (windows[i].text_index, -len(prompt_ids[i])))
                    continuous_greedy(
                        lm.model, [prompt_ids[i] for i in todo], max_new_tokens=config.max_new_tokens, stops=stops,
                        pad_id=lm.tokenizer.pad_token_id, batch_size=batch_size, device=lm.device,
                        on_done=lambda j, ids, todo=todo: finish(todo[j], ids), check_stop=reporter.check_stop,
                        share_keys=[windows[i].text_index for i in todo],
                    )
                else:
                    gc = greedy_config(lm, config.max_new_tokens)
                    for start in range(0, len(todo), batch_size):
                        reporter.check_stop()
                        idx = todo[start: start + batch_size]
                        gen = _generate(lm, [prompt_ids[i] for i in idx], gc)
                        for row, i in enumerate(idx):
                            finish(i, gen[row].tolist())
            except TypeError as e:
                if not continuous or "continuous batching" not in str(e):
                    raise
                continuous = False  # the model manages its cache its own way: plain generate batches
            except (torch.OutOfMemoryError, RuntimeError) as e:
                if not _is_oom(e) or batch_size == 1:
                    raise
                if lm.device.type == "cuda":
                    torch.cuda.empty_cache()
                batch_size = max(1, batch_size // 2)  # windows already decoded are kept
        progress.flush(batch_size)
    return [p if p is not None else "" for p in preds]


class _Progress:
    """Emits ``memo`` progress about once per batch worth of windows (rows finish one by one)."""

    def __init__(self, reporter: Reporter, total: int) -> None:
        self.reporter, self.total, self.done, self.reported = reporter, total, 0, 0

    def advance(self, batch_size: int) -> None:
        self.done += 1
        if self.done - self.reported >= batch_size or self.done == self.total:
            self.flush(batch_size)

    def flush(self, batch_size: int) -> None:
        if self.done != self.reported:
            self.reported = self.done
            self.reporter.emit("memo", self.done, self.total, batch_size=batch_size)
