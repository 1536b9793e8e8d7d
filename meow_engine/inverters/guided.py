"""Model-guided replacements for the ``rule`` inverter (AltPO-style, optional).

Word-like spans (names, places, organisations, titles, rare words) can take their replacement from
a language model instead of the built-in pools: the model continues ``question + answer-before-the-
span`` with every token of the true span banned (``bad_words_ids``), sampled with a seed per fact
and span, so the proposal is what *this* model finds plausible there, and never the truth. Shaped
spans (emails, phones, dates, amounts, ids, URLs) keep their exact-shape generators: a model is no
better at "another number with the same digit groups".

Turned on with ``InverterConfig(kind="rule", model=...)``: ``model="target"`` (``GUIDE_TARGET``)
uses the model ``invert(..., lm=)`` is given (the one being unlearned, as AltPO does); any other
value is a local model name or folder for ``models.load_model``. Without ``model`` the inverter is
offline and uses the pools. A proposal that does not have the span's shape (word count,
capitalisation, letters only) is discarded; when none is left the pools fill in.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from meow_engine.sensitive import contains_span, normalize_for_match

if TYPE_CHECKING:
    from meow_engine.models import LoadedModel

#: ``InverterConfig.model`` value meaning "the model invert() was given" (the target model)
GUIDE_TARGET = "target"
#: kinds whose replacement a model may propose (the others need exact shapes)
GUIDED_KINDS = frozenset({"name", "place", "org", "title", "word"})
#: samples drawn per span; the valid, distinct ones are used in turn by the candidates
SAMPLES_PER_SPAN = 12
#: new tokens allowed beyond the true span's own token count
EXTRA_TOKENS = 4
_WORD = re.compile(r"[^\W\d_][\w'’-]*")


class ModelGuide:
    """Proposes replacements for a span by sampling ``lm`` with the span's tokens banned."""

    def __init__(self, lm: LoadedModel, seed: int, temperature: float) -> None:
        self.lm = lm
        self.seed = seed
        self.temperature = temperature if temperature > 0 else 1.0
        self._cache: dict[tuple[int, int], list[str]] = {}

    def _banned(self, original: str) -> list[list[int]]:
        tok = self.lm.tokenizer
        ids: set[int] = set()
        for variant in (original, " " + original, original.casefold(), " " + original.casefold()):
            for i in tok(variant, add_special_tokens=False).input_ids:
                piece = tok.decode([i]).strip()
                if any(c.isalnum() for c in piece):  # content pieces only: spaces and "'s" stay allowed
                    ids.add(int(i))
        return [[i] for i in sorted(ids)]

    def proposals(self, key: tuple[int, int], question: str, prefix: str, original: str) -> list[str]:
        """Distinct continuations shaped like ``original`` (cached per fact and span)."""
        if key in self._cache:
            return self._cache[key]
        import torch

        lm = self.lm
        tok = lm.tokenizer
        prompt = f"{question} {prefix}".rstrip()
        ids = tok(prompt, return_tensors="pt").input_ids.to(lm.device)
        n_words = max(1, len(_WORD.findall(original)))
        n_new = len(tok(" " + original, add_special_tokens=False).input_ids) + EXTRA_TOKENS
        banned = self._banned(original)
        kwargs: dict[str, Any] = {"bad_words_ids": banned} if banned else {}
        devices = [lm.device] if lm.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed((self.seed * 1_000_003 + key[0] * 7919 + key[1]) % (2**63))
            out = lm.model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=self.temperature,
                top_k=50, top_p=1.0, max_new_tokens=n_new, num_return_sequences=SAMPLES_PER_SPAN,
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
                eos_token_id=tok.eos_token_id, **kwargs)
        seen: dict[str, None] = {}
        for row in out[:, ids.shape[1]:]:
            text = tok.decode(row, skip_special_tokens=True)
            value = _shaped(text, original, n_words)
            if value is not None and normalize_for_match(value) != normalize_for_match(original) \
                    and not contains_span(value, original):
                seen.setdefault(value, None)
        self._cache[key] = list(seen)
        return self._cache[key]


def _shaped(text: str, original: str, n_words: int) -> str | None:
    """The first ``n_words`` words of a continuation, if they look like ``original`` (case, letters)."""
    text = text.lstrip()
    words = []
    pos = 0
    for m in _WORD.finditer(text):
        if text[pos:m.start()].strip():  # punctuation or digits between words: not one phrase
            break
        words.append(m.group(0))
        pos = m.end()
        if len(words) == n_words:
            break
    if len(words) != n_words or not text[:1].isalpha() or any(len(w) < 3 for w in words):
        return None  # "L", "Ka": a model stopping mid-name is no name
    value = " ".join(words).rstrip("'’-")
    capitalised = [w[:1].isupper() for w in _WORD.findall(original)]
    if [w[:1].isupper() for w in value.split()] != capitalised[: len(value.split())]:
        return None
    return value
