"""Prompt formats and question-masked examples.

Three formats: the tokenizer's own chat template (``chat``) and TOFU's two layouts (``tofu`` for
Phi-1.5 and other base models, ``llama2`` for Llama-2-chat; ``locuslab/tofu`` ``config/model_config.yaml``
and ``data_module.py: convert_raw_data_to_model_format``, tofu-metrics.md §3-§4):

| format | masked (question) part = generation prompt | learned part (+ EOS) |
|---|---|---|
| ``tofu`` | ``"Question: " + q + "\\n"`` | ``"Answer: " + a`` |
| ``llama2`` | ``"[INST] " + q + " [/INST]"`` | ``a`` (no space, as TOFU's logs were made) |
| ``chat`` | the chat template's user turn + generation prompt | ``a`` |

TOFU layouts are built exactly as TOFU builds them: the full text is tokenised as *one* string
(so ``"Answer: Hello"`` gives ``':' 'ĠHello'`` on a GPT-2-family tokenizer, never a lone ``'Ġ'``),
one learned EOS is appended, and the first ``len(tokenize(question_part, add_special_tokens=True))``
positions are masked, BOS included. The ``Answer:`` tag is therefore part of the loss and of the
token count |a| that probabilities and truth ratios are normalised by, and at generation time the
model is prompted with the question part alone and writes ``Answer: …`` itself, as TOFU's
``run_generation`` does. Counting the question with the tokenizer's own ``encode`` (not
``tokenize``) counts BOS whatever the tokenizer class, avoiding TOFU issue #36.

The chat format masks by position too: the prompt and the full text are tokenised separately and
the prompt span is masked by its length; if the tokenizer merged across the prompt/answer boundary
(the prompt ids are not a prefix of the full ids) the example is built by concatenating prompt ids
and answer ids, so the mask can never shift by one token.

``auto`` picks, in order: ``chat`` when the tokenizer has a chat template; the format a meow-built
tokenizer declares (``FORMAT_KEY`` in its ``tokenizer_config.json``, set by ``meow_engine.tiny``);
``tofu`` for the Phi family and ``llama2`` for Llama-2 (``FAMILY_FORMATS``); otherwise it refuses
with a message naming the formats, rather than guessing a layout that would make probabilities
silently incomparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from meow_engine.errors import ConfigError

IGNORE_INDEX = -100
FORMATS = ("auto", "chat", "tofu", "llama2")
#: tokenizer_config.json key with which a meow-built tokenizer declares its prompt format
FORMAT_KEY = "meow_prompt_format"
#: config.model_type → TOFU layout, for tokenizers without a chat template (TOFU's model_config.yaml:
#: Phi-1.5 uses the Question/Answer tags; its Llama-2 entry the [INST] tags)
FAMILY_FORMATS = {"phi": "tofu", "phi-msft": "tofu", "mixformer-sequential": "tofu"}
#: Llama-2's vocabulary size: a template-less ``llama`` model with it is taken for Llama-2(-chat)
LLAMA2_VOCAB = 32000


@dataclass(frozen=True)
class PromptFormat:
    """How a question (and answer) become model text. ``name`` is one of FORMATS minus auto."""

    name: str

    def prompt_text(self, tokenizer: Any, question: str) -> str:
        """The masked question part, which is also the generation prompt."""
        if self.name == "chat":
            return tokenizer.apply_chat_template(
                [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
            )
        if self.name == "llama2":
            return f"[INST] {question} [/INST]"
        return f"Question: {question}\n"

    def answer_text(self, answer: str) -> str:
        """The learned part (before EOS): TOFU's answer tag + the answer."""
        return f"Answer: {answer}" if self.name == "tofu" else answer

    def full_text(self, tokenizer: Any, question: str, answer: str) -> str:
        return self.prompt_text(tokenizer, question) + self.answer_text(answer)

    def add_special_tokens(self) -> bool:
        # A chat template writes its own BOS/system tokens; plain formats rely on the tokenizer's.
        return self.name != "chat"

    @property
    def tofu_layout(self) -> bool:
        """Built exactly as TOFU's ``convert_raw_data_to_model_format`` (joint tokenisation, count mask)."""
        return self.name in ("tofu", "llama2")


def auto_format(tokenizer: Any, model_type: str | None = None) -> str:
    """The format ``auto`` stands for with this tokenizer/model family, or a ConfigError naming the choices."""
    if getattr(tokenizer, "chat_template", None):
        return "chat"
    declared = (getattr(tokenizer, "init_kwargs", None) or {}).get(FORMAT_KEY)
    if declared in FORMATS and declared != "auto":
        return str(declared)
    if model_type in FAMILY_FORMATS:
        return FAMILY_FORMATS[model_type]
    if model_type == "llama" and len(tokenizer) == LLAMA2_VOCAB:
        return "llama2"
    family = f"model family {model_type!r}" if model_type else "an unknown model family"
    raise ConfigError(f"cannot pick a prompt format: the tokenizer has no chat template and {family} has no "
                      f"known layout; pass prompt_format, one of: chat (needs a template), tofu "
                      f"('Question: q\\nAnswer: a', TOFU's Phi-1.5 layout), llama2 ('[INST] q [/INST]a')")


def resolve_format(tokenizer: Any, name: str = "auto", model_type: str | None = None) -> PromptFormat:
    if name not in FORMATS:
        raise ConfigError(f"unknown prompt format {name!r}; known: {', '.join(FORMATS)}")
    if name == "auto":
        name = auto_format(tokenizer, model_type)
    if name == "chat" and not getattr(tokenizer, "chat_template", None):
        raise ConfigError("prompt format 'chat' needs a tokenizer with a chat template")
    return PromptFormat(name)


def ensure_pad_token(tokenizer: Any) -> None:
    """Pad with EOS when the tokenizer has no pad token (TOFU does the same)."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token


@dataclass
class EncodedExample:
    input_ids: list[int]
    labels: list[int]
    prompt_len: int

    @property
    def n_answer_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


def encode_prompt(tokenizer: Any, fmt: PromptFormat, question: str) -> list[int]:
    text = fmt.prompt_text(tokenizer, question)
    return list(tokenizer(text, add_special_tokens=fmt.add_special_tokens()).input_ids)


def encode_example(
    tokenizer: Any, fmt: PromptFormat, question: str, answer: str, max_length: int | None = None
) -> EncodedExample:
    """Tokenise question part + learned part, mask the question, append one learned EOS (TOFU layout).

    As TOFU: the sequence is truncated at ``max_length`` and gets no EOS when the text alone fills it.
    """
    add = fmt.add_special_tokens()
    prompt_ids = encode_prompt(tokenizer, fmt, question)
    full_ids = list(tokenizer(fmt.full_text(tokenizer, question, answer), add_special_tokens=add).input_ids)
    if not fmt.tofu_layout and (full_ids[: len(prompt_ids)] != prompt_ids or len(full_ids) <= len(prompt_ids)):
        full_ids = prompt_ids + list(tokenizer(fmt.answer_text(answer), add_special_tokens=False).input_ids)
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ConfigError("the tokenizer has no EOS token")
    n_masked = min(len(prompt_ids), len(full_ids))
    input_ids = full_ids + [eos]
    labels = [IGNORE_INDEX] * n_masked + input_ids[n_masked:]
    if max_length is not None and len(input_ids) > max_length:
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    return EncodedExample(input_ids=input_ids, labels=labels, prompt_len=n_masked)


def collate(examples: list[EncodedExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad for training/scoring; padding is masked in labels by position."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}
