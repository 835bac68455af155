"""The small exception hierarchy shared by servables, scheduler and gateway.

The gateway maps each class to one HTTP status in one place (gateway/errors.py).
"""
from __future__ import annotations


class ServingError(Exception):
    """Base class. `param` names the offending request field when there is one."""

    status_code = 500
    error_type = "internal_error"

    def __init__(self, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class InvalidRequest(ServingError):
    status_code = 400
    error_type = "invalid_request_error"


class ModelNotFound(ServingError):
    status_code = 404
    error_type = "not_found_error"

    def __init__(self, name: str):
        super().__init__(f"The model `{name}` does not exist", param="model", code="model_not_found")


class Overloaded(ServingError):
    """Admission queue full: the client should retry later."""

    status_code = 503
    error_type = "server_overloaded"
    retry_after_seconds = 1


class ModelUnavailable(ServingError):
    """The model is known but cannot take requests now (loading, unloading, failed)."""

    status_code = 503
    error_type = "model_unavailable"


class ModelLoadError(ServingError):
    """A model could not be loaded (bad files, unsupported layout, bad options)."""

    status_code = 500
    error_type = "model_load_error"


class InferenceError(ServingError):
    status_code = 500
    error_type = "internal_error"


class VersionNotFound(ModelNotFound):
    """The model exists but does not serve the requested version (HTTP 404)."""

    def __init__(self, name: str, version: int | None):
        ServingError.__init__(self, f"Model {name} has no served version {version}" if version is not None
                              else f"Model {name} has no served version", param="version",
                              code="model_version_not_found")
