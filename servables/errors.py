"""The small exception hierarchy shared by servables, scheduler and gateway.

These classes say what went wrong, not how it is reported: gateway/error_policy.py maps each class
to an HTTP status, a gRPC code and each API's error body, in one table.
"""
from __future__ import annotations


class ServingError(Exception):
    """Base class. `param` names the offending request field when there is one."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class InvalidRequest(ServingError):
    """The client sent something this model or endpoint cannot take."""


class PayloadTooLarge(InvalidRequest):
    """The request body is larger than the server takes (`--max_body_bytes`)."""


class ModelNotFound(ServingError):
    def __init__(self, name: str):
        super().__init__(f"The model `{name}` does not exist", param="model", code="model_not_found")


class VersionNotFound(ModelNotFound):
    """The model exists but does not serve the requested version."""

    def __init__(self, name: str, version: int | None):
        ServingError.__init__(self, f"Model {name} has no served version {version}" if version is not None
                              else f"Model {name} has no served version", param="version",
                              code="model_version_not_found")


class Overloaded(ServingError):
    """Admission queue full: the client should retry later."""

    retry_after_seconds = 1


class ModelUnavailable(ServingError):
    """The model is known but cannot take requests now (loading, unloading, failed)."""


class ModelNotLoaded(ModelUnavailable):
    """A configured model that is not loaded now (on demand, unloaded, idle). `loadable`: a request
    may load it (the gateway waits for the load, then retries); otherwise it needs
    `POST /v3/models/{name}/load`."""

    retry_after_seconds = 5

    def __init__(self, name: str, loadable: bool, message: str | None = None):
        hint = "" if loadable else f"; load it with POST /v3/models/{name}/load"
        super().__init__(message or f"Model {name} is not loaded{hint}", param="model", code="model_not_loaded")
        self.name = name
        self.loadable = loadable


class Cancelled(ServingError):
    """The job was cancelled (client gone); nobody normally sees this."""


class ModelLoadError(ServingError):
    """A model could not be loaded (bad files, unsupported layout, bad options)."""


class PullError(ServingError):
    """The model could not be pulled or converted; the message says why and what to do."""


class InferenceError(ServingError):
    """The pipeline failed on a request that passed validation."""
