"""The unibatch error tree.

UnibatchError
├── ConfigurationError        a setting or API key is missing or wrong
├── InputError                a request file or request is malformed (names file, line, field)
│   └── LimitError            a request or job exceeds a provider limit
├── UnknownProviderError      `provider/model` names no registered provider
├── NotFoundError             no batch with that id in the store
├── HandlerError              a completion handler cannot be imported
└── ProviderError             a provider answered with an error (vendor errors translated here)
    ├── TransientProviderError    429, 5xx, timeout, reset: retried later, never fatal
    └── PermanentProviderError    4xx that retrying will not fix
        └── ForeignBatchError     an adopted batch was another job's: submit again
"""

from __future__ import annotations


class UnibatchError(Exception):
    """Base of every error unibatch raises on purpose."""


class ConfigurationError(UnibatchError):
    pass


class InputError(UnibatchError):
    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        elif line is not None:
            where = f"line {line}: "
        super().__init__(where + message)
        self.path = path
        self.line = line
        self.field = field


class LimitError(InputError):
    pass


class UnknownProviderError(UnibatchError):
    pass


class NotFoundError(UnibatchError):
    pass


class HandlerError(UnibatchError):
    pass


class ProviderError(UnibatchError):
    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class TransientProviderError(ProviderError):
    def __init__(
        self, message: str, *, status_code: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class PermanentProviderError(ProviderError):
    pass


class ForeignBatchError(PermanentProviderError):
    """A provider batch adopted after a crash turned out to belong to another job (its
    results carry another job's ids): the job is submitted again."""
