"""The API's torch-free name lists agree with the engine's registries."""

from __future__ import annotations

from service.catalog import BUILTIN_MODELS, INVERTER_KINDS, METHOD_NAMES


def test_methods_match_engine():
    from meow_engine.methods import METHODS

    # ``sft`` builds target models (teaches facts); it is not an unlearning method the API offers
    assert set(METHOD_NAMES) == set(METHODS.names()) - {"sft"}


def test_inverters_match_engine():
    from meow_engine.inverters import INVERTERS

    assert set(INVERTER_KINDS) == set(INVERTERS.names())


def test_builtin_models_match_engine():
    """A source the API accepts as built-in must be one the worker can load, and vice versa."""
    from meow_engine.models import NAMED_MODELS, _register_builtins

    _register_builtins()
    assert set(BUILTIN_MODELS) == set(NAMED_MODELS.names())
