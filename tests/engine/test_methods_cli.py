"""``meow methods``: the table, one method's detail, JSON, and a one-line error for unknown names."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from meow_engine.cli import app
from meow_engine.methods.catalog import CATALOG

runner = CliRunner()


def test_table_lists_every_method_with_needs_and_defaults():
    out = runner.invoke(app, ["methods"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split() == ["method", "aliases", "retain", "reference", "parameters", "(defaults)"]
    by_name = {ln.split()[0]: ln for ln in lines[1:]}
    assert sorted(by_name) == CATALOG.names()
    assert by_name["npo_gd"].split()[1:4] == ["NPO", "yes", "yes"]
    assert by_name["ce_u"].split()[1:5] == ["CEU,", "CE-U", "-", "-"]
    assert "beta1=5.0, beta2=1.0, forget_coeff=0.1" in by_name["satimp"]


def test_detail_json_and_errors():
    out = runner.invoke(app, ["methods", "RMU"])
    assert out.exit_code == 0 and out.output.startswith("rmu (alias: RMU)")
    assert "steering_coeff = 2.0" in out.output and "ou:RMU.yaml" in out.output
    data = json.loads(runner.invoke(app, ["methods", "--json"]).output)
    assert [d["name"] for d in data] == CATALOG.names()
    assert {d["name"]: d["needs_reference"] for d in data}["undial"] is True
    one = json.loads(runner.invoke(app, ["methods", "SimNPO", "--json"]).output)
    assert one["name"] == "simnpo" and {p["name"]: p["default"] for p in one["params"]}["beta"] == 4.5
    bad = runner.invoke(app, ["methods", "nope"])
    assert bad.exit_code == 2 and "unknown unlearning method 'nope'" in bad.output
