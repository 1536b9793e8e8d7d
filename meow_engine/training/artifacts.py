"""Saving trained weights in standard layouts, with a sha256 per file for the job record.

* LoRA: the PEFT layout (``adapter_config.json`` + ``adapter_model.safetensors``) that
  ``PeftModel.from_pretrained(base, path)`` and ``load_model(base, adapter=path)`` read as is.
* full: ``save_pretrained`` with safetensors plus the tokenizer, i.e. a normal model folder that
  ``load_model(path)`` loads.
* merged: a LoRA run folded into the base weights and saved like ``full`` (``meow train``'s default),
  so the result needs no peft to load.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from meow_engine.errors import ConfigError
from meow_engine.results import ArtifactInfo

__all__ = ["describe_files", "save_full", "save_lora", "save_merged", "sha256_file"]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def describe_files(folder: Path) -> tuple[dict[str, str], int]:
    """Relative file name → sha256, and the total size, for every file under ``folder``."""
    files, size = {}, 0
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            files[p.relative_to(folder).as_posix()] = sha256_file(p)
            size += p.stat().st_size
    return files, size


def _prepare(out_dir: str | Path) -> Path:
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _lora_info(peft_model: Any) -> tuple[int, int, list[str]]:
    cfg = peft_model.peft_config["default"]
    targets = cfg.target_modules
    names = [targets] if isinstance(targets, str) else list(targets)
    # peft may record full module paths ("model.layers.0.mlp.up_proj"); keep the layer kinds.
    return int(cfg.r), int(cfg.lora_alpha), sorted({n.rsplit(".", 1)[-1] for n in names})


def save_lora(peft_model: Any, out_dir: str | Path, base_model: str) -> ArtifactInfo:
    out = _prepare(out_dir)
    peft_model.peft_config["default"].base_model_name_or_path = base_model
    # save_embedding_layers=False: adapters never target embeddings here, and "auto" would look the
    # base model up on the Hub.
    peft_model.save_pretrained(str(out), safe_serialization=True, save_embedding_layers=False)
    rank, alpha, targets = _lora_info(peft_model)
    files, size = describe_files(out)
    return ArtifactInfo(kind="lora", path=str(out), base_model=base_model, rank=rank, alpha=alpha,
                        target_modules=targets, files=files, size_bytes=size)


def save_full(model: Any, tokenizer: Any, out_dir: str | Path, base_model: str) -> ArtifactInfo:
    out = _prepare(out_dir)
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    files, size = describe_files(out)
    return ArtifactInfo(kind="full", path=str(out), base_model=base_model, files=files, size_bytes=size)


def save_merged(peft_model: Any, tokenizer: Any, out_dir: str | Path, base_model: str) -> tuple[ArtifactInfo, Any]:
    """Fold the adapter into the base weights and save a full model folder.

    Returns the artifact and the merged (plain) model; the PEFT wrapper must not be used after.
    """
    rank, alpha, targets = _lora_info(peft_model)
    merged = peft_model.merge_and_unload()
    info = save_full(merged, tokenizer, out_dir, base_model)
    return info.model_copy(update={"rank": rank, "alpha": alpha, "target_modules": targets}), merged
