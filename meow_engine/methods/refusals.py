"""Refusal answers for the IDK and DPO baselines.

The built-in list is meow's own wording (short, varied "I don't know" answers); callers who want
TOFU's exact strings pass ``refusals_file`` pointing at its ``idontknow.jsonl`` (one refusal per
line, plain text or a JSON string / object with a ``text`` or ``answer`` field).
"""

from __future__ import annotations

import json
from pathlib import Path

from meow_engine.errors import ConfigError

REFUSALS: tuple[str, ...] = (
    "I don't know.",
    "I'm not sure about that.",
    "I have no information on that.",
    "That is something I can't answer.",
    "I don't have an answer to that question.",
    "I can't say.",
    "I'm unable to answer that.",
    "Sorry, I don't know the answer.",
    "I have no knowledge of that.",
    "That's not something I know about.",
    "I cannot recall anything about that.",
    "I'm afraid I can't help with that question.",
    "I don't have details on that.",
    "No idea, I'm afraid.",
    "I couldn't tell you.",
    "That is outside what I know.",
    "I don't have reliable information about that.",
    "I'm not aware of the answer.",
    "I can't provide an answer to that.",
    "Unfortunately, I don't know.",
)


def load_refusals(path: str | Path | None) -> list[str]:
    """The built-in refusals, or those in ``path`` (an error if the file is missing or empty)."""
    if path is None:
        return list(REFUSALS)
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"{p}: refusals file not found")
    out: list[str] = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        text: object = line
        if line[0] in "\"{":
            try:
                text = json.loads(line)
            except json.JSONDecodeError:
                text = line
            if isinstance(text, dict):
                text = text.get("text", text.get("answer"))
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{p}:{n}: expected a refusal text (plain, a JSON string, or {{\"text\": ...}})")
        out.append(text.strip())
    if not out:
        raise ConfigError(f"{p}: no refusal answers in the file")
    return out
