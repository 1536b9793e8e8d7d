"""The MEOW paper's inversion prompt, verbatim (reference ``data/invert.py``).

Kept in one place so the ``openai`` and ``hf`` inverters ask exactly the same question and a
config override (``InverterConfig.prompt``) changes both.
"""

from __future__ import annotations

from meow_engine.facts import Fact

SYSTEM_PROMPT = (
    "Please generate {N} answers based on the Question and Answer that do not factually match the Answer. "
    "Please respond with each answer on a separate line, without adding any numbers or extraneous markers."
)


def system_message(n: int, override: str | None = None) -> str:
    # str.replace, not str.format: an override may contain other braces (JSON examples, ...).
    return (override or SYSTEM_PROMPT).replace("{N}", str(n))


def user_message(question: str, answer: str) -> str:
    return f"Question: {question} Answer: {answer}"


def chat_messages(fact: Fact, n: int, override: str | None = None) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": system_message(n, override)},
        {"role": "user", "content": user_message(fact.question, fact.answer)},
    ]
