"""``hf``: a local instruct model (e.g. ``smollm2-135m-instruct``) asked the paper's prompt.

The prompt goes through the tokenizer's own chat template, since an instruct model only follows
instructions in the format it was tuned on. Sampling is seeded per fact (``seed`` and the fact
index) inside a forked RNG, so results do not depend on fact order or on the caller's RNG state,
and inverting never disturbs the caller's random stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from meow_engine.config import InverterConfig
from meow_engine.errors import ConfigError, InverterError
from meow_engine.facts import Fact
from meow_engine.inverters.base import EXTRA_CALL, INVERTERS, InversionSet, Inverter, finish
from meow_engine.inverters.cleanup import clean_candidates, split_lines
from meow_engine.inverters.prompt import chat_messages

if TYPE_CHECKING:  # torch/transformers load lazily: `meow invert` with rule/openai never needs them
    from meow_engine.models import LoadedModel

#: generations per fact: the first, plus one more (another seed) when it gave fewer than ``n`` usable lines
CALLS_PER_FACT = 2


def fact_seed(seed: int, index: int, call_no: int = 0) -> int:
    return (seed * 1_000_003 + index * 101 + call_no) % (2**63)


@INVERTERS.register("hf")
class HFInverter(Inverter):
    name = "hf"

    def __init__(self, config: InverterConfig, lm: LoadedModel | None = None) -> None:
        super().__init__(config)
        self.lm = lm

    def prepare(self, facts: Sequence[Fact], context_facts: Sequence[Fact]) -> None:
        if self.lm is None:
            if not self.config.model:
                raise ConfigError("inverter 'hf' needs model: a local model folder or a name such as "
                                  "smollm2-135m-instruct")
            from meow_engine.models import load_model

            self.lm = load_model(self.config.model)
        if not getattr(self.lm.tokenizer, "chat_template", None):
            raise ConfigError(f"inverter 'hf': model {self.lm.ref!r} has no chat template; use an instruct model")

    def prompt_ids(self, fact: Fact) -> list[int]:
        assert self.lm is not None
        tok = self.lm.tokenizer
        messages = chat_messages(fact, self.config.n, self.config.prompt)
        try:
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception:  # noqa: BLE001 - some templates reject a system turn: fold it into the user turn
            merged = [{"role": "user", "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}]
            text = tok.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
        # The template already wrote BOS/system tokens; adding special tokens again would double BOS.
        return list(tok(text, add_special_tokens=False).input_ids)

    def generate(self, fact: Fact, index: int, call_no: int = 0) -> str:
        import torch

        assert self.lm is not None
        lm, cfg = self.lm, self.config
        ids = torch.tensor([self.prompt_ids(fact)], device=lm.device)
        sample = cfg.temperature > 0
        kwargs: dict[str, Any] = {"do_sample": sample}
        if sample:
            kwargs.update(temperature=cfg.temperature, top_k=0, top_p=1.0)
        devices = [lm.device] if lm.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(fact_seed(cfg.seed, index, call_no))
            out = lm.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=cfg.max_tokens,
                pad_token_id=lm.tokenizer.pad_token_id,
                eos_token_id=lm.tokenizer.eos_token_id,
                **kwargs,
            )
        return lm.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)

    def invert_one(self, index: int, fact: Fact) -> InversionSet:
        n = self.config.n
        raws: list[str] = []
        lines: list[str] = []
        candidates: list[str] = []
        for call_no in range(CALLS_PER_FACT):
            raw = self.generate(fact, index, call_no)
            raws.append(raw)
            lines.extend(split_lines(raw))
            candidates = clean_candidates(lines, fact.answer)
            if len(candidates) >= n or self.config.temperature == 0:  # greedy would repeat itself
                break
        if not candidates:
            assert self.lm is not None
            raise InverterError(f"model {self.lm.ref!r} produced no usable candidates for fact {index} "
                                f"after {len(raws)} generation(s)")
        return finish(index, candidates, n, raw="\n".join(raws), flags=[EXTRA_CALL] if len(raws) > 1 else [])
