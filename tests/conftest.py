"""Shared fixtures. Tests run offline (HF_HUB_OFFLINE=1) on CPU with real tiny torch models."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from meow_engine.facts import Fact  # noqa: E402

SAMPLE_FACTS = [
    Fact("Where was Elara Voss born?", "Elara Voss was born in Port Meridian in 1962.", id="f0"),
    Fact("What genre does Tomas Quill write?", "Tomas Quill writes gothic mystery novels.", id="f1"),
    Fact("Which award did Mira Okafor win?", "Mira Okafor won the Silver Lantern Prize in 1998.", id="f2"),
    Fact("What is the capital of Veloria?", "The capital of Veloria is Kestrel Bay.", id="f3"),
]


@pytest.fixture(scope="session")
def sample_facts() -> list[Fact]:
    return list(SAMPLE_FACTS)


@pytest.fixture(scope="session")
def random_tiny():
    """An untrained tiny Llama with a tokenizer trained on the sample facts (seconds on CPU)."""
    import torch

    from meow_engine.tiny.random_model import random_tiny_model

    torch.set_num_threads(1)
    texts = [f"{f.question} {f.answer}" for f in SAMPLE_FACTS] * 4
    return random_tiny_model(texts, seed=0, vocab_size=400)


@pytest.fixture(scope="session")
def demo_tiny():
    """``demo:tiny`` (a tiny Llama that memorized ``demo_tiny_facts``), built once per MEOW_CACHE_DIR.

    Shared by the whole session: never train it in place; ``load_model("demo:tiny")`` gives a private copy.
    """
    from meow_engine.models import load_model

    return load_model("demo:tiny", device="cpu")


@pytest.fixture(scope="session")
def demo_tiny_facts():
    """The facts ``demo:tiny`` memorized (fictitious, 40 of them; TOFU-style full-sentence answers)."""
    from meow_engine.tiny.demo import demo_facts

    return demo_facts()


@pytest.fixture
def fresh(random_tiny):
    """A private copy of the session's tiny model, free to train."""
    import copy
    import dataclasses

    return dataclasses.replace(random_tiny, model=copy.deepcopy(random_tiny.model))


@pytest.fixture
def rows(sample_facts):
    """(forget rows, retain rows) of the sample facts, for the method tests."""
    from meow_engine.training import TrainRow

    forget = [TrainRow(f.question, f.answer) for f in sample_facts[:2]]
    retain = [TrainRow(f.question, f.answer) for f in sample_facts[2:]]
    return forget, retain
