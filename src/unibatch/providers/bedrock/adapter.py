"""Amazon Bedrock batch inference adapter: records to S3, `CreateModelInvocationJob`,
poll, read the `.jsonl.out` files back from S3, `StopModelInvocationJob` to cancel.

The AWS client is boto3 (the `bedrock` extra), each call run in a worker thread. Why not
aiobotocore: it pins one exact botocore release, which fights boto3 and other AWS
packages in users' environments, and brings aiohttp along; a Bedrock job is a handful of
control-plane calls and a few large S3 transfers, so threads cost nothing that matters,
and boto3's low-level clients are safe to share between threads. boto3's own retries are
off: the engine retries with its own schedule and knows the whole job.

Crash safety: the job's name and `clientRequestToken` are both derived from our tag. A
create sent again with the same token is ignored by Bedrock (the operation is
idempotent), and `find` lists jobs by name. Records carry `recordId` = the request's
position in the job, mapped back to its `custom_id` by the engine.

Settings (environment): the S3 location for inputs and outputs `UNIBATCH_BEDROCK_S3_URI`
(`s3://bucket/prefix`), the service role Bedrock assumes to read and write it
`UNIBATCH_BEDROCK_ROLE_ARN`, and `UNIBATCH_BEDROCK_MIN_RECORDS` when the account's quota
of records per job differs from the default minimum of 100.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import tempfile
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from typing import IO, Any, Self, TypeVar

import httpx
import orjson

from unibatch.errors import (
    ConfigurationError,
    LimitError,
    PermanentProviderError,
    TransientProviderError,
)
from unibatch.providers.base import JobSpec, Provider, ProviderJob, RequestLine, ResultRow
from unibatch.providers.bedrock.classify import retryable
from unibatch.providers.bedrock.translate import TRANSLATOR
from unibatch.providers.spec import ProviderSpec
from unibatch.types import BatchStatus, ErrorInfo, RequestStatus

S3_URI_ENV = "UNIBATCH_BEDROCK_S3_URI"
ROLE_ENV = "UNIBATCH_BEDROCK_ROLE_ARN"
MIN_RECORDS_ENV = "UNIBATCH_BEDROCK_MIN_RECORDS"
TIMEOUT_HOURS = 24
_SPOOL_BYTES = 1024 * 1024
_READ_BYTES = 1024 * 1024
_S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?$")
# botocore's service model: what each job status means for us. Submitted, Validating and
# Scheduled come before any record runs; PartiallyCompleted is a job that ran out of time
# with some records done (an expired batch that keeps its results, in OpenAI's words);
# Expired never started before its timeout.
STATUS = {
    "Submitted": BatchStatus.VALIDATING,
    "Validating": BatchStatus.VALIDATING,
    "Scheduled": BatchStatus.VALIDATING,
    "InProgress": BatchStatus.IN_PROGRESS,
    "Completed": BatchStatus.COMPLETED,
    "PartiallyCompleted": BatchStatus.EXPIRED,
    "Failed": BatchStatus.FAILED,
    "Stopping": BatchStatus.CANCELLING,
    "Stopped": BatchStatus.CANCELLED,
    "Expired": BatchStatus.EXPIRED,
}
_T = TypeVar("_T")


def _boto() -> Any:
    try:
        import boto3
        import botocore.config
    except ImportError:
        raise ConfigurationError(
            'the bedrock provider needs boto3: pip install "unibatch[bedrock]"'
        ) from None
    return boto3, botocore.config


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/prefix` -> ("bucket", "prefix/") (the prefix may be empty)."""
    found = _S3_URI.match(uri.strip())
    if found is None:
        raise ConfigurationError(f"{S3_URI_ENV} must be s3://BUCKET[/PREFIX], not {uri!r}")
    prefix = (found.group(2) or "").strip("/")
    return found.group(1), f"{prefix}/" if prefix else ""


def job_name(tag: str) -> str:
    """Our tag as a job name and idempotency token (letters, digits and dashes only)."""
    return re.sub(r"[^a-zA-Z0-9]+", "-", tag).strip("-")


class BedrockProvider(Provider):
    translator = TRANSLATOR

    def __init__(
        self,
        spec: ProviderSpec,
        *,
        s3_uri: str,
        role_arn: str,
        session: Mapping[str, str] | None = None,
        endpoint_url: str | None = None,
        s3_endpoint_url: str | None = None,
        min_records: int | None = None,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(spec)
        boto3, config_module = _boto()
        self.bucket, self.prefix = parse_s3_uri(s3_uri)
        self.role_arn = role_arn
        limits = spec.batch_limits
        self.min_records = min_records or (limits.min_requests if limits else 1)
        config = config_module.Config(
            retries={"total_max_attempts": 1},
            connect_timeout=min(timeout, 10.0),
            read_timeout=timeout,
            max_pool_connections=32,
        )
        aws = boto3.session.Session(**dict(session or {}))
        self._bedrock = aws.client("bedrock", endpoint_url=endpoint_url, config=config)
        self._s3 = aws.client("s3", endpoint_url=s3_endpoint_url, config=config)

    @classmethod
    def from_env(
        cls,
        spec: ProviderSpec,
        env: Mapping[str, str],
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> Self:
        # `transport` is httpx's; boto3 has its own HTTP stack, reached through endpoints.
        cls.check_env(spec, env)
        # Passed on only when set: boto3 then finds the rest through its own chain.
        names = {
            "aws_access_key_id": "AWS_ACCESS_KEY_ID",
            "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
            "aws_session_token": "AWS_SESSION_TOKEN",
            "profile_name": "AWS_PROFILE",
        }
        session = {arg: env[var] for arg, var in names.items() if env.get(var)}
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
        if region:
            session["region_name"] = region
        return cls(
            spec,
            s3_uri=env[S3_URI_ENV],
            role_arn=env[ROLE_ENV],
            session=session,
            endpoint_url=env.get(spec.base_url_env) or None,
            s3_endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or None,
            min_records=cls.min_requests(spec, env),
            timeout=timeout,
        )

    @classmethod
    def min_requests(cls, spec: ProviderSpec, env: Mapping[str, str]) -> int:
        minimum = env.get(MIN_RECORDS_ENV)
        if minimum is None:
            return super().min_requests(spec, env)
        if not minimum.isdigit():
            raise ConfigurationError(f"{MIN_RECORDS_ENV} must be a whole number, not {minimum!r}")
        return int(minimum)

    @classmethod
    def check_env(cls, spec: ProviderSpec, env: Mapping[str, str]) -> None:
        for var in (S3_URI_ENV, ROLE_ENV):
            if not env.get(var):
                raise ConfigurationError(
                    f"provider 'bedrock' needs {var} (see the README's Bedrock section)"
                )
        parse_s3_uri(env[S3_URI_ENV])

    async def aclose(self) -> None:
        for client in (self._bedrock, self._s3):
            await asyncio.to_thread(client.close)

    # -- calls ----------------------------------------------------------------------------

    async def _call(
        self, client: Any, operation: str, call: Callable[..., _T], **kwargs: Any
    ) -> _T:
        """One boto3 call in a thread; its failures as our provider errors, named by the
        operation's method and path in the service model (never our endpoint's URL)."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            return await asyncio.to_thread(call, **kwargs)
        except ClientError as exc:
            error = exc.response.get("Error") or {}
            code = str(error.get("Code") or "")
            status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            where = _where(client, operation)
            message = f"bedrock: HTTP {status} on {where}: {code}: {error.get('Message') or ''}"
            if retryable(status, code):
                raise TransientProviderError(message, status_code=status) from exc
            raise PermanentProviderError(message, status_code=status) from exc
        except NoCredentialsError as exc:
            raise ConfigurationError(
                "bedrock: no AWS credentials found (set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run where a role provides them)"
            ) from exc
        except BotoCoreError as exc:
            # Connection failures and timeouts; their text names our endpoint, so it is
            # left out.
            where = _where(client, operation)
            raise TransientProviderError(f"bedrock: {type(exc).__name__} on {where}") from exc

    # -- the interface ----------------------------------------------------------------------

    async def submit(self, spec: JobSpec, lines: AsyncIterable[RequestLine]) -> ProviderJob:
        name = job_name(spec.tag)
        base = f"{self.prefix}{name}/"
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as upload:
            count = await self._write_records(spec, lines, upload)
            self._check_size(count, upload.tell())
            upload.seek(0)
            await self._call(
                self._s3,
                "PutObject",
                self._s3.upload_fileobj,
                Fileobj=upload,
                Bucket=self.bucket,
                Key=f"{base}input.jsonl",
            )
        created = await self._call(
            self._bedrock,
            "CreateModelInvocationJob",
            self._bedrock.create_model_invocation_job,
            jobName=name,
            clientRequestToken=name,
            roleArn=self.role_arn,
            modelId=spec.model,
            inputDataConfig={
                "s3InputDataConfig": {
                    "s3Uri": f"s3://{self.bucket}/{base}input.jsonl",
                    "s3InputFormat": "JSONL",
                }
            },
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{self.bucket}/{base}out/"}},
            timeoutDurationInHours=TIMEOUT_HOURS,
        )
        return ProviderJob(
            id=created["jobArn"],
            status=BatchStatus.VALIDATING,
            native_status="Submitted",
            total=count,
            output_file_id=f"s3://{self.bucket}/{base}out/",
            tag=spec.tag,
        )

    async def _write_records(
        self, spec: JobSpec, lines: AsyncIterable[RequestLine], upload: IO[bytes]
    ) -> int:
        native = self.translator.to_native
        count = 0
        async for line in lines:
            count += 1
            record = {
                "recordId": record_id(line.seq),
                "modelInput": native(spec.endpoint, line.body),
            }
            upload.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
        return count

    def _check_size(self, count: int, size: int) -> None:
        limits = self.spec.batch_limits
        assert limits is not None
        if count < self.min_records:
            raise LimitError(
                f"bedrock: a batch inference job takes at least {self.min_records} records and "
                f"this one has {count}; send at least {self.min_records} requests for the model "
                f"(or set {MIN_RECORDS_ENV} if your account's quota is lower)"
            )
        if count > limits.max_requests or size > limits.max_bytes:
            raise LimitError(
                f"bedrock: {count} records of {size / 1e6:.1f} MB in one job; the limit is "
                f"{limits.max_requests} records and {limits.max_bytes / 1e6:.0f} MB"
            )

    async def find(
        self, tag: str, *, since: float, request_count: int | None = None
    ) -> ProviderJob | None:
        name = job_name(tag)
        after = dt.datetime.fromtimestamp(since - 300, dt.UTC)
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"nameContains": name, "submitTimeAfter": after}
            if token:
                kwargs["nextToken"] = token
            page = await self._call(
                self._bedrock,
                "ListModelInvocationJobs",
                self._bedrock.list_model_invocation_jobs,
                **kwargs,
            )
            for summary in page.get("invocationJobSummaries") or []:
                if summary.get("jobName") == name:
                    return job_of(summary, tag)
            token = page.get("nextToken")
            if not token:
                return None

    async def get(self, job: ProviderJob) -> ProviderJob:
        found = await self._call(
            self._bedrock,
            "GetModelInvocationJob",
            self._bedrock.get_model_invocation_job,
            jobIdentifier=job.id,
        )
        return job_of(found, job.tag)

    async def cancel(self, job: ProviderJob) -> ProviderJob:
        try:
            await self._call(
                self._bedrock,
                "StopModelInvocationJob",
                self._bedrock.stop_model_invocation_job,
                jobIdentifier=job.id,
            )
        except PermanentProviderError as exc:
            # A job that has just ended cannot be stopped (ValidationException or
            # ConflictException, both HTTP 400); its state is what we want.
            if exc.status_code != 400:
                raise
        return await self.get(job)

    async def results(self, job: ProviderJob) -> AsyncIterator[list[ResultRow]]:
        if not job.output_file_id:
            return
        bucket, prefix = parse_s3_uri(job.output_file_id)
        # Bedrock writes `{output}/{job id}/{input file name}.out` and a manifest.
        listed = await self._call(
            self._s3,
            "ListObjectsV2",
            self._s3.list_objects_v2,
            Bucket=bucket,
            Prefix=f"{prefix}{job.id.rsplit('/', 1)[-1]}/",
        )
        keys = [
            item["Key"]
            for item in listed.get("Contents") or []
            if item["Key"].endswith(".jsonl.out")
        ]
        created = int(time.time())
        for key in sorted(keys):
            async for lines in self._lines(bucket, key):
                yield [parse_record(line, created) for line in lines]

    async def _lines(self, bucket: str, key: str) -> AsyncIterator[list[bytes]]:
        """An S3 object's JSONL lines, a read at a time: memory stays flat at any size."""
        found = await self._call(self._s3, "GetObject", self._s3.get_object, Bucket=bucket, Key=key)
        body = found["Body"]
        try:
            rest = b""
            while True:
                chunk = await self._call(self._s3, "GetObject", body.read, amt=_READ_BYTES)
                if not chunk:
                    break
                *complete, rest = (rest + chunk).split(b"\n")
                lines = [line for line in complete if line.strip()]
                if lines:
                    yield lines
            if rest.strip():
                yield [rest]
        finally:
            body.close()


def _where(client: Any, operation: str) -> str:
    """`METHOD /path` of an operation, from the client's service model."""
    http = client.meta.service_model.operation_model(operation).http
    return f"{http['method']} {http['requestUri'].partition('?')[0]}"


def record_id(seq: int) -> str:
    """The request's position as an 11-character record id (the length Bedrock's older
    documentation asks for, all digits, so every reading of its rules accepts it)."""
    if seq < 0:
        raise ValueError("a Bedrock record needs the request's position in its job")
    return f"{seq:011d}"


def job_of(found: Mapping[str, Any], tag: str | None) -> ProviderJob:
    native = str(found.get("status") or "Submitted")
    output = ((found.get("outputDataConfig") or {}).get("s3OutputDataConfig") or {}).get("s3Uri")
    failed = int(found.get("errorRecordCount") or 0)
    message = found.get("message")
    return ProviderJob(
        id=str(found["jobArn"]),
        # An unknown new status is treated as still running: polling continues.
        status=STATUS.get(native, BatchStatus.IN_PROGRESS),
        native_status=native,
        completed=int(found.get("successRecordCount") or 0),
        failed=failed,
        total=int(found.get("totalRecordCount") or 0),
        output_file_id=output,
        errors=[str(message)] if message else [],
        tag=tag,
    )


def parse_record(line: bytes, created: int = 0) -> ResultRow:
    """One output record: `modelOutput` (the model's response body) or `error`."""
    record = orjson.loads(line)
    seq = int(record["recordId"])
    output = record.get("modelOutput")
    if isinstance(output, dict) and record.get("error") is None:
        body, usage = TRANSLATOR.from_native(output, created=created)
        return ResultRow(None, RequestStatus.SUCCEEDED, 200, body, None, usage, seq=seq, raw=line)
    error = record.get("error") or {}
    code = error.get("errorCode")
    status = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
    return ResultRow(
        custom_id=None,
        status=RequestStatus.ERRORED,
        status_code=status,
        error=ErrorInfo(
            code=str(code if code is not None else "unknown_error"),
            message=str(error.get("errorMessage") or ""),
            retryable=retryable(status, None if status else str(code)),
        ),
        seq=seq,
        raw=line,
    )
