"""Engine exceptions. Each carries a short ``code`` so the service can map it to a problem type
without parsing messages; the message itself is one line a CLI user can act on."""

from __future__ import annotations


class MeowError(Exception):
    code = "meow_error"


class ConfigError(MeowError, ValueError):
    """A setting or parameter is invalid (caller's fault)."""

    code = "user_invalid_config"


class FactsError(MeowError, ValueError):
    """A facts file or payload is malformed (caller's fault)."""

    code = "user_invalid_facts"


class ModelLoadError(MeowError):
    code = "model_load_failed"


class AdapterMismatchError(ModelLoadError):
    """An adapter's tensors do not fit its base model's shapes (the base changed since training)."""

    code = "adapter_incompatible"


class InverterError(MeowError):
    """The inverter could not produce candidates (endpoint down, garbage answers, ...)."""

    code = "inverter_failed"


class StopRequested(MeowError):
    """Raised inside long loops when the caller's ``should_stop`` callable returns True."""

    code = "cancelled"


class TrainingError(MeowError):
    """Finetuning could not go on (e.g. the loss became NaN/inf)."""

    code = "training_failed"
