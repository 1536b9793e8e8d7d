"""TOFU splits from a local folder (JSON Lines under ``.json`` names), with TOFU's pairings.

The folder is ``MEOW_TOFU_DIR`` or ``<repo>/../shared/data/tofu`` (the project keeps the data
beside the repository, not in it). Every row gets its 0-based split position as ``Fact.id``
(legacy ``add_dataset_index``) so per-item results can be joined by index. The legacy evaluator
keeps only the first ``ds_size=300`` rows of each eval set; that cap is the default here
because TOFU's committed retain-model logs (the Forget Quality references) were made with it.
"""

from __future__ import annotations

import os
from pathlib import Path

from meow_engine.errors import ConfigError, FactsError
from meow_engine.facts import Fact, load_facts

#: forget split -> the retain split (and retain model) it is compared with
FORGET_RETAIN_PAIRS: dict[str, str] = {"forget01": "retain99", "forget05": "retain95", "forget10": "retain90"}
#: legacy per-set item cap (``config/eval_everything.yaml: ds_size``)
LEGACY_DS_SIZE = 300
#: eval set name -> split file; the forget file depends on the forget split
EVAL_SET_FILES: dict[str, str] = {
    "retain": "retain_perturbed.json",
    "ra": "real_authors_perturbed.json",
    "wf": "world_facts_perturbed.json",
}


def default_tofu_dir() -> Path | None:
    """``MEOW_TOFU_DIR`` if set, else ``../shared/data/tofu`` next to the repository; None if absent."""
    env = os.environ.get("MEOW_TOFU_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tofu")
    for c in candidates:
        if (c / "full.json").is_file():
            return c.resolve()
    return None


def resolve_tofu_dir(path: str | Path | None = None) -> Path:
    if path is not None:
        p = Path(path)
        if not (p / "full.json").is_file():
            raise ConfigError(f"{p}: not a TOFU data folder (no full.json)")
        return p
    found = default_tofu_dir()
    if found is None:
        raise ConfigError("TOFU data folder not found: set MEOW_TOFU_DIR or pass a path")
    return found


def retain_split_for(forget_split: str) -> str:
    try:
        return FORGET_RETAIN_PAIRS[forget_split]
    except KeyError:
        known = ", ".join(FORGET_RETAIN_PAIRS)
        raise ConfigError(f"no retain split is paired with {forget_split!r}; known forget splits: {known}") from None


def load_split(name: str, data_dir: str | Path | None = None, ds_size: int | None = None) -> list[Fact]:
    """Rows of ``<name>.json`` as Facts with ``id`` = the row index; the first ``ds_size`` rows if given."""
    d = resolve_tofu_dir(data_dir)
    path = d / (name if name.endswith(".json") else f"{name}.json")
    if not path.is_file():
        raise FactsError(f"{path}: no such TOFU split")
    facts = load_facts(path)
    if ds_size is not None:
        if ds_size < 1:
            raise ConfigError(f"ds_size must be positive, got {ds_size}")
        facts = facts[:ds_size]
    return [Fact(f.question, f.answer, id=str(i), paraphrased_answer=f.paraphrased_answer,
                 paraphrased_question=f.paraphrased_question, perturbed_answers=f.perturbed_answers)
            for i, f in enumerate(facts)]


def load_eval_sets(
    forget_split: str = "forget10", data_dir: str | Path | None = None, ds_size: int | None = LEGACY_DS_SIZE
) -> dict[str, list[Fact]]:
    """The four TOFU eval sets (retain, forget, ra, wf) as the legacy evaluator reads them.

    ``ds_size=300`` (default, legacy) caps each set to its first 300 rows (only retain and
    forget10 are longer); ``None`` keeps every row as open-unlearning does.
    """
    retain_split_for(forget_split)  # validates the name
    files = {"retain": EVAL_SET_FILES["retain"], "forget": f"{forget_split}_perturbed.json",
             "ra": EVAL_SET_FILES["ra"], "wf": EVAL_SET_FILES["wf"]}
    return {s: load_split(f, data_dir, ds_size) for s, f in files.items()}
