"""The unibatch error tree.

UnibatchError
├── ConfigurationError        a setting or API key is missing or wrong
├── InputError                a request file or request is malformed (names file, line, field)
│   ├── LimitError            a request or job exceeds a provider limit
│   ├── UnknownProviderError  `provider/model` names no registered provider
│   ├── CostLimitError        a batch's estimated cost is over its `max_cost` (or unknown)
│   └── NotEndedError         a batch that has not ended cannot be retried
├── NotFoundError             no batch (or key) with that id in the store
├── HandlerError              a completion handler cannot be imported
├── BudgetExceededError       a virtual key's remaining budget cannot cover a batch (gateway)
├── IdempotencyConflictError  an Idempotency-Key was used for a different create (gateway)
├── UnpricedModelError        no price is known for a model, so a budget cannot hold it (gateway)
├── DecoderError              the result decoder process failed for a reason not a provider's
└── ProviderError             a provider answered with an error (vendor errors translated here)
    ├── TransientProviderError    429, 5xx, timeout, reset: retried later, never fatal
    └── PermanentProviderError    4xx that retrying will not fix
        └── ForeignBatchError     an adopted batch was another job's: submit again

How front ends show them: the CLI prints one red line and exits 2 for `InputError` and
`ConfigurationError`, 4 for `NotFoundError` and 1 for the rest; the gateway answers 400
for bad input or an unpriced model, 402 when the budget is exceeded.
"""

from __future__ import annotations


class UnibatchError(Exception):
    """Base of every error unibatch raises on purpose.

    Catch it to handle anything unibatch refuses or cannot do; anything else escaping the
    library is a bug. The CLI turns an uncaught one into one red line and exit code 1.
    """


class ConfigurationError(UnibatchError):
    """A setting or API key is missing or wrong, e.g. no `OPENAI_API_KEY` for a batch
    that uses OpenAI.

    Raised by the provider registry when a provider is first used and by the store for a
    bad database URL. The CLI exits 2; the gateway answers 400 naming the model.
    """


class InputError(UnibatchError):
    """A request file or request is malformed.

    Raised while reading and validating requests (`engine.inputs`) and by each provider's
    translator (`validate`). Besides the message it carries where the problem is, so each front
    end can name it in its own terms:

    - `detail`: the message without any location;
    - `path` and `line`: the request file and 1-based line (for requests given as
      Python dicts, `path` is None and `line` counts them);
    - `field`: the offending field when known: a key of the request body (`seed`,
      `messages`) or of the line itself (`custom_id`, `method`, `url`, `body`).

    `str(exc)` is `PATH:LINE: detail`, which the CLI prints as is and exits 2; the gateway
    says `line N` for an uploaded file or `requests[i]` for inline requests instead.

    >>> str(InputError("duplicate custom_id 'a'", path="in.jsonl", line=3))
    "in.jsonl:3: duplicate custom_id 'a'"
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.detail = message
        self.path = path
        self.line = line
        self.field = field
        super().__init__(self.where() + message)

    def where(self) -> str:
        """The location prefix of the message: `PATH:LINE: `, `PATH: `, `line N: ` or ''."""
        if self.path is not None:
            return f"{self.path}:{self.line}: " if self.line is not None else f"{self.path}: "
        return f"line {self.line}: " if self.line is not None else ""


class LimitError(InputError):
    """A request or a job exceeds a provider's limit (bytes per line or file, requests
    per batch) and cannot be split to fit.

    Raised by the planner and the provider adapters before anything is uploaded; shown
    like any `InputError`.
    """


class UnknownProviderError(InputError):
    """A `provider/model` string names no registered provider, or names none at all.

    Raised by the provider registry. Bad input like any other: the request reader names
    the line, the CLI exits 2 and the gateway answers 400.
    """


class CostLimitError(InputError):
    """A batch's estimated cost at batch prices is over its `max_cost`, or cannot be known
    (a model without a price): it is refused before anything is sent.

    >>> str(CostLimitError("estimated $2.10, over max_cost $1.00", path="in.jsonl"))
    'in.jsonl: estimated $2.10, over max_cost $1.00'
    """


class NotEndedError(InputError):
    """A retry was asked of a batch that has not ended (or has just been retried by
    someone else). The gateway answers 409."""


class NotFoundError(UnibatchError):
    """No batch (or, in the CLI's key commands, no key) with that id in the store.

    Raised by the engine's lookups; the CLI exits 4 (the gateway answers its own 404).
    """


class HandlerError(UnibatchError):
    """A batch's `on_complete` handler (`module:function`) cannot be imported.

    Raised when the handler is loaded to be called, after the batch ended; like any
    handler failure it is recorded on the batch as `handler_error` and retried later.
    """


class BudgetExceededError(UnibatchError):
    """A batch's estimated cost does not fit in the virtual key's remaining budget.

    Raised by the gateway's store when it reserves the estimate; the gateway answers
    402 `budget_exceeded` with this message.
    """

    def __init__(self, *, max_budget: float, committed: float, estimate: float) -> None:
        super().__init__(
            f"this batch is estimated to cost ${estimate:.6f}; the key has "
            f"${max(max_budget - committed, 0.0):.6f} of its ${max_budget:.6f} budget left "
            f"(spent or reserved: ${committed:.6f})"
        )
        self.max_budget = max_budget
        self.committed = committed
        self.estimate = estimate


class IdempotencyConflictError(UnibatchError):
    """An `Idempotency-Key` already made a batch, in the last 24 hours, from a request
    with a different body: the caller reused a key for another request.

    Raised by the gateway's store; the gateway answers 409 `idempotency_key_reused`.
    """

    def __init__(self, key: str) -> None:
        super().__init__(
            f"the Idempotency-Key {key!r} was used in the last 24 hours for a create with "
            "a different body; send a new key for a new batch, or the same body to get the "
            "batch it made"
        )
        self.key = key


class UnpricedModelError(UnibatchError):
    """No price is known for `model`, so a batch using it cannot be reserved against a
    key's budget.

    Raised by the gateway's cost estimate; the gateway answers 400 `model_not_priced`
    to a key with a budget and lets the batch through (estimated at 0) otherwise.
    """

    def __init__(self, model: str) -> None:
        super().__init__(
            f"no price is known for model {model!r}, so its cost cannot be reserved "
            "against this key's budget"
        )
        self.model = model


class DecoderError(UnibatchError):
    """The process that decodes result files failed for a reason that is not a
    provider's: a bug, unreadable data, or the process died.

    Raised by the ingest step on the worker's side of the pipe; the worker logs it and
    retries the step when its lease runs out.
    """


class ProviderError(UnibatchError):
    """A provider answered with an error; every vendor exception is translated into
    one of the two subclasses at the adapter boundary.

    `status_code` is the provider's HTTP status when there was one. The CLI exits 1.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class TransientProviderError(ProviderError):
    """A failure that may pass: 429, 5xx, a timeout or a reset connection.

    The engine retries the step later (after `retry_after` seconds when the provider
    said so); it never fails a batch by itself.
    """

    def __init__(
        self, message: str, *, status_code: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class PermanentProviderError(ProviderError):
    """A 4xx (or equivalent) that retrying will not fix: the engine fails the job and
    records the message on its batch (`ForeignBatchError` aside)."""


class ForeignBatchError(PermanentProviderError):
    """A provider batch adopted after a crash turned out to belong to another job (its
    results carry another job's ids): the job is submitted again.

    Raised while reading an adopted batch's results; the engine handles it, so no front
    end shows it.
    """
