"""MEMO windows: where the text is cut and what the model is asked to continue.

Cut points are *characters* (``range(1, len(text), stride)``), exactly as the reference code cuts,
so cuts may fall mid-word. The two modes differ in which string is cut (meow-method.md §3):

- ``suffix``: the candidate answer ``y`` is cut; prompt ``q + " " + y[:k]``, label ``y[k:]``.
- ``prefix``: the question ``q`` is cut; prompt ``q[:k]``, label ``q[k:] + " " + y``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from meow_engine.errors import ConfigError

MODES = ("suffix", "prefix")


@dataclass(frozen=True)
class Window:
    """One generate call of MEMO: the model continues ``prompt`` and is scored against ``label``."""

    text_index: int
    cut: int
    prompt: str
    label: str
    #: first text with the same question (``all_windows`` sets it): texts that answer one question
    #: are drafts for each other in the speculative engine; None = a group of its own
    question_index: int | None = None

    @property
    def text(self) -> str:
        """The string the window was cut from, ``q + " " + y`` in both modes (its draft)."""
        return self.prompt + self.label


def cut_points(text: str, stride: int = 5) -> range:
    if stride < 1:
        raise ConfigError(f"MEMO stride must be >= 1, got {stride}")
    return range(1, len(text), stride)


def text_windows(question: str, text: str, mode: str = "suffix", stride: int = 5,
                 text_index: int = 0) -> list[Window]:
    """All windows of one (question, candidate) pair in cut order."""
    if mode == "suffix":
        return [Window(text_index, k, f"{question} {text[:k]}", text[k:]) for k in cut_points(text, stride)]
    if mode == "prefix":
        return [Window(text_index, k, question[:k], f"{question[k:]} {text}") for k in cut_points(question, stride)]
    raise ConfigError(f"unknown MEMO mode {mode!r}; known: {', '.join(MODES)}")


def all_windows(pairs: Sequence[tuple[str, str]], mode: str = "suffix", stride: int = 5) -> list[Window]:
    """Windows of every pair, flattened; ``Window.text_index`` points back into ``pairs``."""
    out: list[Window] = []
    first: dict[str, int] = {}
    for i, (question, text) in enumerate(pairs):
        group = first.setdefault(question, i)
        out.extend(replace(w, question_index=group) for w in text_windows(question, text, mode, stride, text_index=i))
    return out
