"""Reading requests: JSONL files or Python dicts, validated before anything is sent.

Both line shapes are accepted: the OpenAI batch line (`custom_id`, `method`, `url`,
`body`) and the short line (`custom_id`, `body`). Every problem is an `InputError` that
names the file and line.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from unibatch import codec
from unibatch.engine import limits
from unibatch.engine.cache import Answer, CacheCopy, cache_key, key_hash
from unibatch.engine.plan import Planner
from unibatch.engine.queue_tokens import input_tokens
from unibatch.errors import InputError, UnknownProviderError
from unibatch.providers.base import Provider, RequestLine
from unibatch.providers.registry import ProviderSet, split_model
from unibatch.providers.spec import ProviderSpec
from unibatch.providers.translate import EMBEDDINGS

if TYPE_CHECKING:
    from unibatch.estimate.meter import CostMeter

DEFAULT_ENDPOINT = "/v1/chat/completions"
Source = str | Path | Iterable[Mapping[str, Any]]


# Model names whose provider lookup a reader keeps (a file names a few).
_MODELS_KEPT = 1024


@dataclass(frozen=True, slots=True)
class _Target:
    spec: ProviderSpec
    adapter: type[Provider]
    bare_model: str


# (line number, parsed line): a tuple, not a class, as it is made once per line.
RawLine = tuple[int, Any]
# A request as the store writes it: (batch_id, seq, custom_id, job_id, packed body, cache
# key and its hash, or None), the order of `store.imports.REQUEST_COLUMNS`.
RequestRow = tuple[str, int, str, str, bytes, bytes | None, int | None]
# What planning a request needs: (provider, bare model, endpoint, size in bytes, line,
# embedding inputs, input tokens).
Plan = tuple[ProviderSpec, str, str, int, int, int, int]


@dataclass(slots=True)
class Unplanned:
    """A chunk read and validated but not yet given to jobs (their job ids are empty):
    the cache decides first which of its requests are sent at all."""

    rows: list[RequestRow]
    plans: list[Plan]

    def targets(self) -> dict[bytes, tuple[str, str, str]]:
        """Each request's cache key with the provider, model and endpoint it names."""
        return {
            row[5]: (plan[0].name, plan[1], plan[2])
            for row, plan in zip(self.rows, self.plans, strict=True)
            if row[5] is not None
        }


def _read_file(path: Path) -> Iterator[RawLine]:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read requests: {exc.strerror}", path=str(path)) from exc
    with handle:
        for number, line in enumerate(handle, start=1):
            if number == 1:
                # Spreadsheet exports start UTF-8 files with a byte order mark.
                line = line.removeprefix(codecs.BOM_UTF8)
            if not line.strip():
                continue
            try:
                yield number, orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                if "depth limit" in exc.msg:
                    message = f"the line {limits.nested_too_deeply(limits.MAX_PARSE_DEPTH)}"
                else:
                    # orjson counts lines within the one line it was given: name the column.
                    message = f"not valid JSON ({exc.msg} at column {exc.colno})"
                raise InputError(message, path=str(path), line=number) from exc


def raw_lines(source: Source) -> tuple[str | None, Iterator[RawLine]]:
    if isinstance(source, str | Path):
        path = Path(source)
        return str(path), _read_file(path)
    return None, enumerate(source, start=1)


class RequestReader:
    """Validates lines and plans jobs as it goes; yields request rows in chunks."""

    def __init__(
        self,
        source: Source,
        *,
        batch_id: str,
        planner: Planner,
        providers: ProviderSet,
        model: str | None = None,
        chunk: int = 2000,
        namespace: str | None = None,
        meter: CostMeter | None = None,
    ) -> None:
        self.path, self._lines = raw_lines(source)
        # Where cache keys are made (`unibatch.engine.cache`); None: no keys (a batch
        # without the cache neither takes nor gives answers, and pays nothing for it).
        self.namespace = namespace
        # Sums the estimated cost of every request read (for a batch with a spend cap).
        self.meter = meter
        self.batch_id = batch_id
        self.planner = planner
        self.providers = providers
        self.model = model
        self.chunk = chunk
        self.count = 0
        # The line being read (for errors raised about it from elsewhere).
        self.line: int | None = None
        self.endpoint: str | None = None
        # Ids of the chunk being built; repeats across chunks are caught by the store's
        # unique constraint, so memory stays flat however long the file is.
        self._seen: set[str] = set()
        self._line_of_seq: dict[int, int] = {}
        self._lines_before: dict[int, int] = {}
        self._models: dict[str, _Target] = {}

    def _error(self, message: str, line: int, field: str | None = None) -> InputError:
        return InputError(message, path=self.path, line=line, field=field)

    def _check_text(self, field: str, value: str, limit: int, line: int) -> None:
        try:
            limits.check_text(value, limit)
        except limits.ValueRefused as exc:
            raise self._error(f"{field} {exc}", line, field.rpartition(".")[2]) from None

    def _row(self, raw: RawLine, plans: list[Plan] | None = None) -> RequestRow:
        """The row of a valid line, given to its job; with `plans`, given to none yet
        (its job id empty) and what planning it needs appended to `plans`."""
        n, data = raw
        if not isinstance(data, dict):
            raise self._error("each line must be a JSON object", n)
        custom_id = data.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            raise self._error("missing custom_id (a non-empty string)", n, "custom_id")
        self._check_text("custom_id", custom_id, limits.MAX_CUSTOM_ID, n)
        if custom_id in self._seen:
            raise self._error(f"duplicate custom_id {custom_id!r}", n, "custom_id")
        body = data.get("body")
        if not isinstance(body, dict):
            raise self._error("missing body (a JSON object)", n, "body")
        method = data.get("method", "POST")
        if method != "POST":
            raise self._error(f"method must be POST, not {method!r}", n, "method")
        endpoint = data.get("url") or DEFAULT_ENDPOINT
        if body.get("stream"):
            raise self._error("body.stream is true; batch requests cannot stream", n, "stream")
        model = self.model or body.get("model")
        if not isinstance(model, str) or not model:
            raise self._error(
                "missing body.model (or pass a model, e.g. openai/gpt-4o-mini)", n, "model"
            )
        target = self._models.get(model) or self._resolve(model, n)
        spec, adapter, bare_model = target.spec, target.adapter, target.bare_model
        if endpoint not in spec.endpoints:
            supported = ", ".join(sorted(spec.endpoints))
            raise self._error(
                f"url {endpoint!r} is not supported by {spec.name} (supported: {supported})",
                n,
                "url",
            )
        # Rules depend on the model that is actually sent (after --model and prefixes).
        if body.get("model") != bare_model:
            body = {**body, "model": bare_model}
        try:
            # Before the translation, which walks the body (recursively, for some providers).
            data = limits.encode_body(body)
        except limits.ValueRefused as exc:
            raise self._error(f"body {exc}", n, "body") from None
        try:
            adapter.translator.validate(endpoint, body)
        except InputError as exc:
            raise self._error(exc.detail, n, exc.field) from None
        seq = self.count
        self._seen.add(custom_id)
        self._line_of_seq[seq] = n
        self.endpoint = self.endpoint or endpoint
        # The size counts the line as the provider will see it (translated, with envelope).
        size = adapter.line_bytes(RequestLine(custom_id, body, seq), data)
        inputs = embedding_inputs(body) if endpoint == EMBEDDINGS else 1
        exact = self.planner.counts_tokens(spec, bare_model)
        tokens = input_tokens(spec.name, bare_model, endpoint, body, exact=exact)
        if self.meter is not None:
            self.meter.add(spec.name, bare_model, endpoint, body)
        key = hashed = None
        if self.namespace is not None:
            key = cache_key(self.namespace, spec.name, bare_model, endpoint, body)
            hashed = key_hash(key)
        if plans is None:
            job_id = self.planner.assign(
                spec, bare_model, endpoint, size, self.path, n, inputs=inputs, tokens=tokens
            )
        else:
            job_id = ""
            plans.append((spec, bare_model, endpoint, size, n, inputs, tokens))
        return (self.batch_id, seq, custom_id, job_id, codec.pack_bytes(data), key, hashed)

    def plan(self, chunk: Unplanned, answers: Mapping[bytes, Answer]) -> list[CacheCopy]:
        """Give the requests of `chunk` to jobs: those with a stored answer in `answers`
        (by cache key) to the batch's cache job, the rest to provider jobs. Fills in the
        job ids of `chunk.rows`; the answers to copy."""
        copies: list[CacheCopy] = []
        rows = chunk.rows
        for i, (spec, model, endpoint, size, line, inputs, tokens) in enumerate(chunk.plans):
            batch_id, seq, custom_id, _, data, key, hashed = rows[i]
            answer = None if key is None else answers.get(key)
            if answer is None:
                job_id = self.planner.assign(
                    spec, model, endpoint, size, self.path, line, inputs=inputs, tokens=tokens
                )
            else:
                job_id = self.planner.assign_cached(spec.name, model, endpoint)
                copies.append(
                    {
                        "custom_id": custom_id,
                        "job_id": job_id,
                        "from_batch": answer.batch_id,
                        "from_custom_id": answer.custom_id,
                    }
                )
            rows[i] = (batch_id, seq, custom_id, job_id, data, key, hashed)
        return copies

    def _resolve(self, model: str, n: int) -> _Target:
        """Provider, adapter and bare name of a model, looked up once per model name."""
        try:
            provider_name, bare_model = split_model(model)
        except UnknownProviderError as exc:
            raise self._error(exc.detail, n, "model") from None
        self._check_text("body.model", bare_model, limits.MAX_MODEL, n)
        spec = self.providers.spec(provider_name)
        adapter = spec.adapter_class()
        self.providers.check(provider_name)
        target = _Target(spec, adapter, bare_model)
        if len(self._models) < _MODELS_KEPT:
            self._models[model] = target
        return target

    def duplicate(self, row: RequestRow) -> InputError:
        """The error for a row whose custom_id an earlier chunk already used."""
        seq, custom_id = row[1], row[2]
        line = self._line_of_seq.get(seq) or self._lines_before[seq]
        return self._error(f"duplicate custom_id {custom_id!r}", line, "custom_id")

    def iter_chunks(self) -> Iterator[list[RequestRow]]:
        """Validated request rows, `chunk` at a time, each given to its job. Synchronous,
        so an importer can read and validate in a thread while its event loop stays free."""
        for rows, _ in self._read(planned=True):
            yield rows

    def iter_unplanned(self) -> Iterator[Unplanned]:
        """Validated request rows, `chunk` at a time, not yet given to jobs (`plan`)."""
        for rows, plans in self._read(planned=False):
            yield Unplanned(rows, plans)

    def _read(self, *, planned: bool) -> Iterator[tuple[list[RequestRow], list[Plan]]]:
        chunk: list[RequestRow] = []
        plans: list[Plan] = []
        deferred = None if planned else plans
        for raw in self._lines:
            self.line = raw[0]
            chunk.append(self._row(raw, deferred))
            self.count += 1
            if len(chunk) >= self.chunk:
                yield chunk, plans
                chunk = []
                plans = []
                deferred = None if planned else plans
                self._seen.clear()
                # The chunk just yielded may still be being written when the next is read.
                self._lines_before, self._line_of_seq = self._line_of_seq, {}
        if chunk:
            yield chunk, plans
        if self.count == 0:
            raise InputError("no requests", path=self.path)

    async def chunks(self) -> AsyncIterator[list[RequestRow]]:
        for chunk in self.iter_chunks():
            yield chunk


def embedding_inputs(body: dict[str, Any]) -> int:
    """How many texts an embeddings request embeds: `input` is one string, one token list,
    or a list of either."""
    value = body.get("input")
    if isinstance(value, list) and value and not all(isinstance(v, int) for v in value):
        return len(value)
    return 1
