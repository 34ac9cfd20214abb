"""One root exception; each subclass carries what the HTTP layer needs to answer as Lambda does."""

from __future__ import annotations


class FaasError(Exception):
    """Root of every error faas raises on purpose."""

    status: int = 500
    error_type: str = "ServiceException"
    kind: str = "Service"  # Lambda's "Type" field: "User" or "Service"

    def __init__(self, message: str, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, object]:
        """The JSON body Lambda's API sends for this error."""
        return {"Type": self.kind, "Message": self.message, "message": self.message, **self.extra}


class ValidationError(FaasError):
    """A function.yaml, a parameter or a package is not acceptable; nothing was changed."""

    status = 400
    error_type = "InvalidParameterValueException"
    kind = "User"


class PackageTooLarge(ValidationError):
    """The zipped package is over Lambda's 50 MB limit."""

    status = 413
    error_type = "RequestEntityTooLargeException"


class FunctionNotFound(FaasError):
    """No function (or version) by that name."""

    status = 404
    error_type = "ResourceNotFoundException"
    kind = "User"


class ResourceConflict(FaasError):
    """The function or alias exists already (Lambda's ResourceConflictException)."""

    status = 409
    error_type = "ResourceConflictException"
    kind = "User"


class PreconditionFailed(FaasError):
    """A RevisionId or CodeSha256 sent by the caller is not the current one."""

    status = 412
    error_type = "PreconditionFailedException"
    kind = "User"


class InvalidRequestContent(FaasError):
    """The invocation body is not JSON."""

    status = 400
    error_type = "InvalidRequestContentException"
    kind = "User"


class RequestTooLarge(FaasError):
    """The invocation payload is over the sync or async limit."""

    status = 413
    error_type = "RequestTooLargeException"
    kind = "User"


class TooManyRequests(FaasError):
    """A concurrency limit refused the call; Reason says which."""

    status = 429
    error_type = "TooManyRequestsException"
    kind = "User"

    def __init__(self, message: str, reason: str, retry_after_s: int = 1) -> None:
        super().__init__(message, Reason=reason, retryAfterSeconds=str(retry_after_s))
        self.reason = reason
        self.retry_after_s = retry_after_s


class ShuttingDown(FaasError):
    """The gateway is draining and takes no new calls."""

    status = 503
    error_type = "ServiceException"


class EngineError(FaasError):
    """The Docker engine failed or is not reachable."""

    status = 502
    error_type = "ServiceException"


class EngineUnavailable(EngineError):
    """No Docker engine answers and faas cannot start one here."""


class ImageBuildError(FaasError):
    """A runtime image could not be built."""


class EnvironmentFailed(FaasError):
    """An execution environment died or failed to start (not the function's own error)."""

    error_type = "Runtime.ExitError"


class VersionInitFailed(FaasError):
    """A new version failed to initialise, so it did not go live; the previous version still serves."""

    status = 400
    error_type = "InitializationFailedException"
    kind = "User"


class GatewayUnavailable(FaasError):
    """The CLI found no gateway at FAAS_GATEWAY."""
