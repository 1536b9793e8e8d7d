"""What both MEMO engines must do identically: tokenise prompts, configure greedy decoding, and
turn generated ids into the prediction string that ROUGE scores.

Keeping this in one module is what makes the engines comparable: any difference between their
scores can then only come from the forward pass itself (batching and padding), never from how
prompts were encoded or outputs decoded.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from transformers import GenerationConfig

from meow_engine.errors import ConfigError
from meow_engine.models import LoadedModel


def encode_prompts(tokenizer: Any, prompts: Sequence[str]) -> list[list[int]]:
    """Raw ``tokenizer(prompt).input_ids`` per prompt: default special tokens (BOS), no template.

    A list call without padding encodes every prompt on its own (ids do not depend on the other
    prompts) in one call into the Rust tokenizer, instead of one slow Python round trip each.
    """
    if not prompts:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # The Rust tokenizer directly: transformers' per-encoding Python conversion costs more than
        # the tokenisation itself. Checked against the full ``tokenizer(...)`` path on a sample so a
        # tokenizer whose Python wrapper adds anything (BOS logic, normalisation) falls back.
        fast = [enc.ids for enc in backend.encode_batch(list(prompts), add_special_tokens=True)]
        sample = range(0, len(prompts), max(1, len(prompts) // 4))
        if all(fast[i] == list(tokenizer(prompts[i]).input_ids) for i in sample):
            return fast
    return [list(ids) for ids in tokenizer(list(prompts)).input_ids]


def stop_ids(lm: LoadedModel) -> list[int]:
    """EOS ids a row stops at: the tokenizer's EOS plus any the checkpoint's generation config lists
    (what ``generate`` would stop at by default, e.g. ``<|im_end|>`` and ``<|endoftext|>``)."""
    ids: list[int] = []
    gc_eos = getattr(getattr(lm.model, "generation_config", None), "eos_token_id", None)
    for x in [lm.tokenizer.eos_token_id, *(gc_eos if isinstance(gc_eos, list) else [gc_eos])]:
        if x is not None and x not in ids:
            ids.append(int(x))
    if not ids:
        raise ConfigError("the tokenizer has no EOS token; MEMO cannot tell where a generation ends")
    return ids


def greedy_config(lm: LoadedModel, max_new_tokens: int) -> GenerationConfig:
    """An explicit greedy config that the checkpoint's ``generation_config`` cannot override.

    ``generate`` fills every field left ``None`` from the model's own config (which for reference
    checkpoints may say ``do_sample=True`` or carry a repetition penalty), so every field that shapes
    greedy decoding is set here to its neutral value.
    """
    params = GenerationConfig()._get_default_generation_params()
    params.update(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        use_cache=True,
        pad_token_id=lm.tokenizer.pad_token_id,
        eos_token_id=stop_ids(lm),
        return_dict_in_generate=False,
    )
    model_gc = getattr(lm.model, "generation_config", None)
    for key in ("suppress_tokens", "begin_suppress_tokens", "bad_words_ids", "sequence_bias"):
        if getattr(model_gc, key, None):  # rare for causal LMs; an empty value switches the processor off
            params[key] = [] if key != "sequence_bias" else {}
    params.pop("max_length", None)
    return GenerationConfig(**params)


def first_stop(gen_ids: Sequence[int], stops: Sequence[int]) -> int | None:
    """Index of the first stop token in ``gen_ids`` or None."""
    stop_set = set(stops)
    for j, t in enumerate(gen_ids):
        if t in stop_set:
            return j
    return None


def decode_prediction(tokenizer: Any, prompt: str, prompt_ids: Sequence[int], gen_ids: Sequence[int],
                      stops: Sequence[int], parity: bool) -> str:
    """The prediction ROUGE scores for one window.

    ``gen_ids`` are the tokens after the prompt, possibly followed by padding of a finished batch
    row; everything after the first stop token is dropped so both engines see the same sequence.

    - clean: decode the generated tokens before the stop token, special tokens skipped.
    - parity: decode prompt + generated tokens including the stop token without skipping special
      tokens, then ``str.replace(prompt, '')`` — the reference's string, ``<s>``/``</s>`` and all.
    """
    j = first_stop(gen_ids, stops)
    if parity:
        seq = list(prompt_ids) + list(gen_ids if j is None else gen_ids[: j + 1])
        return tokenizer.decode(seq, skip_special_tokens=False).replace(prompt, "")
    seq = list(gen_ids if j is None else gen_ids[:j])
    return tokenizer.decode(seq, skip_special_tokens=True)


@contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """Dropout off while scoring (a model fresh from finetuning may be in train mode), then restore."""
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()
