"""Randomly initialised tiny Llama models: the cheapest real torch model for unit tests."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from meow_engine.models import LoadedModel
from meow_engine.prompts import resolve_format
from meow_engine.tiny.tokenizer import train_tokenizer


def tiny_llama_config(vocab_size: int, hidden: int = 64, layers: int = 2, heads: int = 4,
                      intermediate: int = 128, max_positions: int = 512, tokenizer=None) -> LlamaConfig:
    kw = {}
    if tokenizer is not None:
        kw = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                  pad_token_id=tokenizer.pad_token_id)
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        **kw,
    )


def random_tiny_model(texts: Sequence[str], seed: int = 0, vocab_size: int = 1024, **config_kw) -> LoadedModel:
    """Tokenizer trained on ``texts`` + an untrained tiny Llama, on CPU in fp32."""
    tokenizer = train_tokenizer(texts, vocab_size=vocab_size)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_llama_config(len(tokenizer), tokenizer=tokenizer, **config_kw))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, ref="random-tiny", path=None,
                       device=torch.device("cpu"), prompt_format=resolve_format(tokenizer, "tofu"))
