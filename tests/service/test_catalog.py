"""The API's torch-free name lists agree with the engine's registries."""

from __future__ import annotations

from service.catalog import BUILTIN_MODELS, INVERTER_KINDS, METHOD_NAMES, TRAINING_ONLY


def test_every_offered_method_has_an_implementation():
    from meow_engine.methods import METHODS
    from meow_engine.methods.catalog import CATALOG

    assert set(METHOD_NAMES) == set(METHODS.names()) - TRAINING_ONLY
    assert set(CATALOG.names()) == set(METHODS.names())


def test_inverters_match_engine():
    from meow_engine.inverters import INVERTERS

    assert set(INVERTER_KINDS) == set(INVERTERS.names()) and "rule" in INVERTER_KINDS


def test_builtin_models_match_engine():
    """A source the API accepts as built-in must be one the worker can load, and vice versa."""
    from meow_engine.models import NAMED_MODELS, _register_builtins

    _register_builtins()
    assert set(BUILTIN_MODELS) == set(NAMED_MODELS.names())
