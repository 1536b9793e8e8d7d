"""``meow unlearn --config FILE``: the file's values hold unless a flag is actually given.

The pipeline is replaced by a recorder for these checks: what is under test is only how the CLI
merges the file, the flags and the engine defaults into the ``UnlearnConfig`` it runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner


class _Captured(Exception):
    pass


@pytest.fixture()
def run_cli(monkeypatch, tmp_path: Path):
    import meow_engine.pipeline as pipeline
    from meow_engine.cli import app

    seen = {}

    def record(model, forget, retain, cfg, **kw):
        seen["cfg"] = cfg
        raise _Captured

    monkeypatch.setattr(pipeline, "unlearn", record)
    facts = tmp_path / "facts.jsonl"
    facts.write_text(json.dumps({"question": "Where was Elara Voss born?", "answer": "In Port Meridian."}) + "\n")

    def run(*args: str, config: dict | None = None):
        extra = []
        if config is not None:
            path = tmp_path / "cfg.json"
            path.write_text(json.dumps(config))
            extra = ["--config", str(path)]
        r = CliRunner().invoke(app, ["unlearn", "-m", "demo:tiny", "-f", str(facts), *extra, *args])
        assert isinstance(r.exception, _Captured), r.output
        return seen["cfg"]

    return run


def test_config_file_values_survive_absent_flags(run_cli):
    file_cfg = {"method": "ga", "inverter": {"kind": "given", "n": 7, "seed": 5},
                "selection": {"k": 2, "order": "smallest", "rows_per_qa": 2, "seed": 9},
                "finetune": {"mode": "full", "seed": 11, "max_steps": 3}, "memo": {"mode": "prefix"}}
    cfg = run_cli(config=file_cfg)
    assert cfg.method == "ga"
    assert (cfg.inverter.kind, cfg.inverter.n, cfg.inverter.seed) == ("given", 7, 5)
    assert (cfg.selection.k, cfg.selection.order, cfg.selection.seed) == (2, "smallest", 9)
    assert (cfg.finetune.mode, cfg.finetune.seed, cfg.finetune.max_steps) == ("full", 11, 3)
    assert cfg.memo.mode == "prefix"


def test_flags_given_override_the_file(run_cli):
    cfg = run_cli("--method", "npo", "--k", "1", "--seed", "3", "--mode", "lora",
                  config={"method": "ga", "selection": {"k": 2, "rows_per_qa": 2}, "finetune": {"mode": "full"}})
    assert cfg.method == "npo" and cfg.selection.k == 1 and cfg.finetune.mode == "lora"
    assert cfg.inverter.seed == cfg.selection.seed == cfg.finetune.seed == 3
    assert cfg.selection.rows_per_qa == 2  # untouched file value next to an overridden one


def test_no_config_uses_engine_defaults(run_cli):
    from meow_engine.config import UnlearnConfig

    assert run_cli() == UnlearnConfig()
