"""Loading causal LMs by reference: a local HF folder, a named built-in, or a Hugging Face id.

``load_model`` is the one entry point the CLI, pipeline and workers use. Named built-ins
(``demo:tiny``, ``smollm2-135m-instruct``) register a builder in ``NAMED_MODELS`` that returns a
local folder (built or converted once, then cached), so every model ends up loaded the same way.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from meow_engine.errors import ModelLoadError
from meow_engine.prompts import PromptFormat, ensure_pad_token, resolve_format
from meow_engine.registry import Registry

#: name -> callable returning a local HF folder for that model (building/caching it if needed)
NAMED_MODELS: Registry[Callable[[], Path]] = Registry("model name")

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
           "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    ref: str
    path: Path | None
    device: torch.device
    prompt_format: PromptFormat

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype


def cache_dir() -> Path:
    """Where built/converted models live; ``MEOW_CACHE_DIR`` overrides ``~/.cache/meow``."""
    d = Path(os.environ.get("MEOW_CACHE_DIR", Path.home() / ".cache" / "meow"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """An inter-process lock (flock) around building a cached artifact."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_once(final: Path, build: Callable[[Path], None], marker: str = "config.json") -> Path:
    """Return ``final``, building it first if ``final/marker`` is missing.

    Several processes (test workers, the API, a Celery worker) may ask at once: one builds under
    a file lock while the others wait, and the build goes to a temporary sibling folder that is
    renamed into place, so nobody ever loads a half-written model.
    """
    if (final / marker).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(final.parent / f".{final.name}.lock"):
        if (final / marker).is_file():  # built by another process while we waited
            return final
        tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            build(tmp)
            shutil.rmtree(final, ignore_errors=True)  # a leftover without its marker
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def pick_device(device: str | None = None) -> torch.device:
    """``auto``/None: CUDA when present, else CPU. An explicit device is checked before any load."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ModelLoadError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelLoadError(f"device {device!r} requested but CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ModelLoadError(f"device {device!r} requested but only {torch.cuda.device_count()} GPU(s) exist")
    return dev


def pick_dtype(dtype: str | None, device: torch.device) -> torch.dtype:
    if dtype in (None, "auto"):
        return torch.float32  # MEMO parity and tiny models want fp32; callers opt into bf16
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise ModelLoadError(f"unknown dtype {dtype!r}; known: {', '.join(sorted(_DTYPES))}") from None


def resolve_model_path(ref: str) -> Path | str:
    """A named built-in -> its cached folder; an existing folder -> itself; else a hub id."""
    if ref in NAMED_MODELS:
        return NAMED_MODELS.get(ref)()
    p = Path(ref).expanduser()
    if p.exists():
        if not (p / "config.json").is_file():
            raise ModelLoadError(f"{p}: not a Hugging Face model folder (no config.json)")
        return p
    if ref.startswith((".", "/", "~")) or os.sep in ref.strip("/").replace("/", "", 1):
        raise ModelLoadError(f"{ref}: no such model folder")
    if ":" in ref:  # hub ids never contain ':', built-in names may (demo:tiny)
        raise ModelLoadError(f"unknown built-in model {ref!r}; known: {', '.join(NAMED_MODELS.names())}")
    return ref  # a Hugging Face id (needs network unless cached)


def load_model(
    ref: str | os.PathLike[str],
    device: str | None = None,
    dtype: str | None = None,
    prompt_format: str = "auto",
    adapter: str | os.PathLike[str] | None = None,
) -> LoadedModel:
    """Load a causal LM and its tokenizer; optionally apply a PEFT adapter folder on top."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ref = str(ref)
    dev = pick_device(device)  # bad device/dtype fail before anything is built or downloaded
    torch_dtype = pick_dtype(dtype, dev)
    adapter_dir = _check_adapter(adapter)
    _register_builtins()
    where = resolve_model_path(ref)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(where))
        model = AutoModelForCausalLM.from_pretrained(str(where), dtype=torch_dtype)
    except (OSError, ValueError) as e:
        hint = ""
        if isinstance(where, str):
            hint = f" (not a local folder nor a built-in name: {', '.join(NAMED_MODELS.names())})"
        raise ModelLoadError(f"cannot load model {ref!r}: {_first_line(e)}{hint}") from None
    if adapter_dir is not None:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, str(adapter_dir))
        except (OSError, ValueError, RuntimeError) as e:
            raise ModelLoadError(f"cannot apply adapter {adapter_dir}: {_first_line(e)}") from None
    model.to(dev)
    model.eval()
    ensure_pad_token(tokenizer)
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        ref=ref,
        path=Path(where) if isinstance(where, Path) else None,
        device=dev,
        prompt_format=resolve_format(tokenizer, prompt_format, model_type=getattr(model.config, "model_type", None)),
    )


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _check_adapter(adapter: str | os.PathLike[str] | None) -> Path | None:
    if adapter is None:
        return None
    p = Path(adapter).expanduser()
    if not (p / "adapter_config.json").is_file():
        raise ModelLoadError(f"{p}: not a PEFT adapter folder (no adapter_config.json)")
    return p


def _register_builtins() -> None:
    """Import modules that register named models (kept lazy so importing models is cheap)."""
    import importlib

    for mod in ("meow_engine.tiny.demo", "meow_engine.smollm2"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
