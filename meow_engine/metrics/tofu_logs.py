"""TOFU's per-item evaluation-log layout: read, validate, write.

A log is ``{field: {"0": value, "1": value, ...}}`` (column-major, string indices, contiguous, in
split order), exactly what the legacy ``locuslab/tofu`` evaluator writes. Keeping that layout
means the committed logs of TOFU's own full/retain models aggregate with our code, and logs our
evaluator writes can be compared with them (Forget Quality needs the retain model's per-item
truth ratios). Run settings cannot live inside a log without breaking the layout, so they go into
a sidecar ``meow_eval_flags.json`` next to the four log files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from meow_engine.errors import MeowError

TofuLog = dict[str, dict[str, Any]]

#: eval set name -> legacy file name inside ``eval_results/ds_size300/``
LOG_FILES: dict[str, str] = {
    "retain": "eval_log.json",
    "forget": "eval_log_forget.json",
    "ra": "eval_real_author_wo_options.json",
    "wf": "eval_real_world_wo_options.json",
}
AGGREGATED_FILE = "eval_log_aggregated.json"
FLAGS_FILE = "meow_eval_flags.json"

#: per-item fields every log carries (RA/WF logs add ``normalized_gt_loss``)
ITEM_FIELDS = (
    "avg_gt_loss", "gt_loss", "num_token_gt", "generated_text", "rouge1_recall", "rougeL_recall",
    "average_perturb_loss", "avg_paraphrased_loss", "truth_ratio", "paraphrased_loss", "perturb_loss",
    "num_token_paraphrased", "num_token_perturb",
)


class EvalLogError(MeowError, ValueError):
    """An evaluation log is missing, malformed, or does not match the log it is compared with."""

    code = "user_invalid_eval_log"


def validate_log(log: Any, where: str) -> TofuLog:
    """Check the column layout: every field maps the same contiguous "0".."N-1" indices."""
    if not isinstance(log, dict) or not log:
        raise EvalLogError(f"{where}: expected a JSON object mapping metric names to per-item objects")
    expected: list[str] | None = None
    for name, column in log.items():
        if not isinstance(column, dict):
            raise EvalLogError(f"{where}: field {name!r} must map item indices to values")
        keys = list(column)
        if expected is None:
            if not all(isinstance(k, str) and k.isdigit() for k in keys):
                raise EvalLogError(f"{where}: field {name!r} has non-numeric item indices")
            expected = [str(i) for i in range(len(keys))]
            if sorted(keys, key=int) != expected:
                raise EvalLogError(f"{where}: item indices of {name!r} are not contiguous from 0")
        elif sorted(keys, key=lambda k: int(k) if k.isdigit() else -1) != expected:
            raise EvalLogError(f"{where}: field {name!r} covers different items than the other fields")
    return log


def n_items(log: TofuLog) -> int:
    return len(next(iter(log.values())))


def column(log: TofuLog, name: str, where: str = "log") -> list[Any]:
    """Values of one field in item order; a missing field is a clear error, not a KeyError."""
    try:
        col = log[name]
    except KeyError:
        raise EvalLogError(f"{where}: field {name!r} missing (has: {', '.join(sorted(log))})") from None
    return [col[str(i)] for i in range(len(col))]


def log_from_items(items: Iterable[Mapping[str, Any]]) -> TofuLog:
    """Row dicts (one per item, in order) -> the column layout."""
    log: TofuLog = {}
    for i, item in enumerate(items):
        for name, value in item.items():
            log.setdefault(name, {})[str(i)] = value
    return validate_log(log, "items")


def items_from_log(log: TofuLog) -> list[dict[str, Any]]:
    return [{name: col[str(i)] for name, col in log.items()} for i in range(n_items(log))]


def read_log(path: str | Path) -> TofuLog:
    p = Path(path)
    if not p.is_file():
        raise EvalLogError(f"{p}: no such file")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise EvalLogError(f"{p}: invalid JSON at line {e.lineno}: {e.msg}") from None
    return validate_log(data, str(p))


def read_log_dir(path: str | Path, sets: Iterable[str] = tuple(LOG_FILES)) -> dict[str, TofuLog]:
    """Read the logs of ``sets`` from a folder (the four files, or TOFU's bundled aggregated file)."""
    d = Path(path)
    if not d.is_dir():
        raise EvalLogError(f"{d}: no such folder")
    sets = list(sets)
    for s in sets:
        if s not in LOG_FILES:
            raise EvalLogError(f"unknown eval set {s!r}; known: {', '.join(LOG_FILES)}")
    missing = [LOG_FILES[s] for s in sets if not (d / LOG_FILES[s]).is_file()]
    if missing and (d / AGGREGATED_FILE).is_file():
        bundle = json.loads((d / AGGREGATED_FILE).read_text(encoding="utf-8"))
        if all(LOG_FILES[s] in bundle for s in sets):
            return {s: validate_log(bundle[LOG_FILES[s]], f"{d / AGGREGATED_FILE}[{LOG_FILES[s]}]") for s in sets}
    if missing:
        raise EvalLogError(f"{d}: missing {', '.join(missing)}")
    return {s: read_log(d / LOG_FILES[s]) for s in sets}


def write_log(log: TofuLog, path: str | Path) -> None:
    validate_log(log, str(path))
    Path(path).write_text(json.dumps(log, indent=4, ensure_ascii=False) + "\n", encoding="utf-8")


def write_log_dir(logs: Mapping[str, TofuLog], path: str | Path, flags: Mapping[str, Any] | None = None) -> Path:
    """Write each set's log under its legacy file name, plus the run settings as a sidecar."""
    d = Path(path)
    d.mkdir(parents=True, exist_ok=True)
    for s, log in logs.items():
        if s not in LOG_FILES:
            raise EvalLogError(f"unknown eval set {s!r}; known: {', '.join(LOG_FILES)}")
        write_log(log, d / LOG_FILES[s])
    if flags is not None:
        (d / FLAGS_FILE).write_text(json.dumps(dict(flags), indent=2) + "\n", encoding="utf-8")
    return d


def read_flags(path: str | Path) -> dict[str, Any] | None:
    """The settings our evaluator recorded for a log folder; None for logs written elsewhere (TOFU's)."""
    f = Path(path) / FLAGS_FILE
    if not f.is_file():
        return None
    return json.loads(f.read_text(encoding="utf-8"))


_PROMPT_WRAPPERS = re.compile(r"^\s*(\[INST\]|Question:)\s*|\s*(\[/INST\]|Answer:)\s*$")


def question_of(prompt: str) -> str:
    """The question inside a logged prompt, whitespace-insensitive, for row-by-row identity checks.

    Logged prompts are decoded text (``"[INST] q [/INST]"`` or ``"Question: q\\n"``); decoding can
    shift whitespace, so all whitespace is dropped before comparing.
    """
    text = prompt
    for _ in range(2):
        text = _PROMPT_WRAPPERS.sub("", text)
    return "".join(text.split())
