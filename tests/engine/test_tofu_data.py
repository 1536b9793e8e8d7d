"""Loading TOFU splits: sizes, legacy 300 cap, explicit forget/retain pairing, indices."""

from __future__ import annotations

from pathlib import Path

import pytest

from meow_engine.errors import ConfigError, FactsError
from meow_engine.metrics.tofu_data import (
    FORGET_RETAIN_PAIRS,
    default_tofu_dir,
    load_eval_sets,
    load_split,
    resolve_tofu_dir,
    retain_split_for,
)

TOFU = default_tofu_dir()
needs_data = pytest.mark.skipif(TOFU is None,
                                reason="TOFU data folder not found (../shared/data/tofu or MEOW_TOFU_DIR)")


def test_explicit_pairing_not_derived_from_the_name() -> None:
    assert FORGET_RETAIN_PAIRS == {"forget01": "retain99", "forget05": "retain95", "forget10": "retain90"}
    assert retain_split_for("forget10") == "retain90"  # the reference's '10'.strip('0') gave retain99
    with pytest.raises(ConfigError, match="forget20"):
        retain_split_for("forget20")


@needs_data
def test_eval_sets_legacy_cap_and_full() -> None:
    legacy = load_eval_sets("forget10")
    assert {k: len(v) for k, v in legacy.items()} == {"retain": 300, "forget": 300, "ra": 100, "wf": 117}
    full = load_eval_sets("forget10", ds_size=None)
    assert {k: len(v) for k, v in full.items()} == {"retain": 400, "forget": 400, "ra": 100, "wf": 117}
    assert [f.id for f in full["forget"][:3]] == ["0", "1", "2"]
    assert len(load_eval_sets("forget01")["forget"]) == 40
    f = full["forget"][0]
    assert f.paraphrased_answer and f.paraphrased_question and len(f.perturbed_answers) == 5
    assert len(full["ra"][0].perturbed_answers) == 3 and full["ra"][0].paraphrased_answer is None


@needs_data
def test_forget_sets_are_the_last_authors() -> None:
    full = load_split("full")
    forget10 = load_split("forget10")
    retain90 = load_split("retain90")
    assert [f.question for f in forget10] == [f.question for f in full[-400:]]
    assert [f.question for f in retain90] == [f.question for f in full[:3600]]
    perturbed = load_split("forget10_perturbed")
    assert [f.answer for f in perturbed] == [f.answer for f in forget10]


def test_data_dir_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="not a TOFU data folder"):
        resolve_tofu_dir(tmp_path)
    (tmp_path / "full.json").write_text('{"question": "q?", "answer": "a."}\n{"question": "r?", "answer": "b."}\n')
    monkeypatch.setenv("MEOW_TOFU_DIR", str(tmp_path))
    assert default_tofu_dir() == tmp_path.resolve()
    assert [f.id for f in load_split("full", ds_size=1)] == ["0"]
    with pytest.raises(FactsError, match="no such TOFU split"):
        load_split("retain90")
    with pytest.raises(ConfigError, match="ds_size"):
        load_split("full", ds_size=0)
