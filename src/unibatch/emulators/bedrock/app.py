"""Amazon Bedrock's batch inference control plane, as a Starlette app, over moto's S3.

Mount :attr:`BedrockEmulator.app` at ``/bedrock`` and point boto3 at it::

    boto3.client("bedrock", endpoint_url="http://H:P/bedrock", region_name="us-east-1")
    boto3.client("s3", endpoint_url=emulator.s3_url)   # moto's server, started on demand

The routes, fields and errors follow botocore's service model for ``bedrock``
(``botocore/data/bedrock/2023-04-20/service-2.json``): ``POST /model-invocation-job``,
``GET /model-invocation-job/{jobIdentifier}`` (the ARN or its 12-character id),
``GET /model-invocation-jobs``, ``POST /model-invocation-job/{jobIdentifier}/stop``;
errors as ``x-amzn-errortype`` plus ``{"message"}``, Conflict and ServiceQuotaExceeded as
HTTP 400. SigV4 headers are required but not verified. A job moves with the clock
through Submitted, Validating, Scheduled, InProgress to Completed (or Stopping/Stopped,
PartiallyCompleted when its timeout cuts it short, Expired if it never started, Failed
when validation fails: bad JSONL, a missing input object, fewer records than the
minimum, the `min_batch_records` knob). Results are written to
``{output s3Uri}{job id}/{input file}.out`` with a ``manifest.json.out`` beside it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import secrets
import string
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..kit import (
    Clock,
    EmulatedError,
    EmulatorConfig,
    Fault,
    Handler,
    ProviderEmulator,
    json_response,
)
from ..kit.timeline import Phase, Schedule, phase_at
from . import records, storage

_ALPHABET = string.ascii_lowercase + string.digits
_JOB_NAME = re.compile(r"^[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9\+\-\.]){0,63}$")
_TOKEN = re.compile(r"^[a-zA-Z0-9]{1,256}(-*[a-zA-Z0-9]){0,256}$")
_ROLE = re.compile(r"^arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+$")
_S3 = re.compile(r"^s3://([a-z0-9][\.\-a-z0-9]{1,61}[a-z0-9])(/(.*))?$")
_MODEL = re.compile(r"^(?:[a-z]+\.)?anthropic\.claude-[a-z0-9.:-]+$")
_STATUSES = (
    "Submitted",
    "InProgress",
    "Completed",
    "Failed",
    "Stopping",
    "Stopped",
    "PartiallyCompleted",
    "Expired",
    "Validating",
    "Scheduled",
)


class BedrockError(EmulatedError):
    """An AWS JSON error: the type in `x-amzn-errortype`, the text in `message`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        headers = {"x-amzn-errortype": code, "x-amzn-requestid": str(uuid.uuid4())}
        super().__init__(status, {"message": message}, headers)


def _invalid(message: str) -> BedrockError:
    return BedrockError(400, "ValidationException", message)


def _constraint(detail: str) -> str:
    # How AWS words a request that breaks its service model's constraints.
    return f"1 validation error detected: {detail}"


def _iso(instant: float) -> str:
    moment = dt.datetime.fromtimestamp(instant, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Job:
    arn: str
    id: str
    name: str
    token: str
    model_id: str
    role_arn: str
    input_uri: str
    output_uri: str
    timeout_hours: int
    schedule: Schedule
    fail: bool
    min_records: int
    stopping_at: float | None = None
    scan: asyncio.Future[records.Scan] | None = None
    written: asyncio.Future[dict[str, int]] | None = None
    path: Path | None = None


class BedrockEmulator(ProviderEmulator):
    """Bedrock batch inference jobs over moto's S3; calls are counted under their route."""

    name = "bedrock"

    def __init__(self, config: EmulatorConfig | None = None, clock: Clock | None = None) -> None:
        super().__init__(config, clock)
        self.jobs: dict[str, Job] = {}  # by 12-character id, in creation order

    @property
    def s3_url(self) -> str:
        """moto's S3 endpoint (started on first use)."""
        return storage.s3_url()

    def client_env(self) -> dict[str, str]:
        env = {
            "AWS_ENDPOINT_URL_S3": self.s3_url,
            "AWS_ACCESS_KEY_ID": storage.CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": storage.CREDENTIALS["aws_secret_access_key"],
            "AWS_REGION": storage.REGION,
            "UNIBATCH_BEDROCK_S3_URI": f"s3://{storage.BUCKET}/batches",
            "UNIBATCH_BEDROCK_ROLE_ARN": f"arn:aws:iam::{storage.ACCOUNT}:role/BedrockBatch",
        }
        if self.config.min_batch_records is not None:
            env["UNIBATCH_BEDROCK_MIN_RECORDS"] = str(self.config.min_batch_records)
        return env

    def api_routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/model-invocation-job", self._create),
            ("GET", "/model-invocation-jobs", self._list),
            ("POST", "/model-invocation-job/{job:path}/stop", self._stop),
            ("GET", "/model-invocation-job/{job:path}", self._get),
        ]

    def authenticate(self, request: Request) -> None:
        auth = request.headers.get("authorization", "")
        if auth.startswith("AWS4-HMAC-SHA256 Credential=") or auth.startswith("Bearer "):
            return
        raise BedrockError(403, "AccessDeniedException", "Missing Authentication Token")

    def fault_error(self, fault: Fault) -> EmulatedError:
        if fault.status == 429:
            msg = "Too many requests, please wait before trying again."
            return BedrockError(429, "ThrottlingException", msg)
        if fault.status == 503:
            return BedrockError(503, "ServiceUnavailableException", "Service unavailable.")
        if fault.status >= 500:
            return BedrockError(fault.status, "InternalServerException", "Internal error.")
        return _invalid("Emulated fault.")

    def not_found_error(self, request: Request, status: int) -> EmulatedError:
        return BedrockError(404, "UnknownOperationException", "Unknown operation")

    async def snapshot(self) -> dict[str, Any]:
        jobs = []
        for job in list(self.jobs.values()):
            view = await self._observe(job)
            jobs.append(
                {
                    "id": job.arn,
                    "status": view["status"],
                    "name": job.name,
                    "model": job.model_id,
                    "request_count": view.get("totalRecordCount", 0),
                }
            )
        return {"batches": jobs, "files": 0}

    # -- the operations -------------------------------------------------------------------

    async def _create(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise _invalid("Invalid JSON in the request body.") from None
        if not isinstance(body, dict):
            raise _invalid("The request body must be a JSON object.")
        token = body.get("clientRequestToken")
        if isinstance(token, str):
            for job in self.jobs.values():
                if job.token == token:
                    # The operation is idempotent: a repeated token returns the same job.
                    return json_response({"jobArn": job.arn})
        job = self._new_job(body)
        self.jobs[job.id] = job
        job.scan = asyncio.ensure_future(self._validate(job))
        if self.config.create_delay > 0:
            await asyncio.sleep(self.config.create_delay)
        return json_response({"jobArn": job.arn})

    def _new_job(self, body: dict[str, Any]) -> Job:
        name = _required(body, "jobName")
        if not _JOB_NAME.match(name):
            raise _invalid(_constraint(f"Value '{name}' at 'jobName' failed to satisfy constraint"))
        role = _required(body, "roleArn")
        if not _ROLE.match(role):
            raise _invalid(_constraint(f"Value '{role}' at 'roleArn' failed to satisfy constraint"))
        model = _required(body, "modelId")
        if not _MODEL.match(model):
            raise _invalid(f"The provided model identifier is invalid: {model}")
        token = body.get("clientRequestToken") or str(uuid.uuid4())
        if not isinstance(token, str) or not _TOKEN.match(token):
            raise _invalid("Value at 'clientRequestToken' failed to satisfy constraint")
        input_uri = _s3_uri(body, "inputDataConfig", "s3InputDataConfig")
        output_uri = _s3_uri(body, "outputDataConfig", "s3OutputDataConfig")
        hours = body.get("timeoutDurationInHours", 168)
        if not isinstance(hours, int) or not 24 <= hours <= 168:
            raise _invalid("timeoutDurationInHours must be between 24 and 168.")
        if any(job.name == name for job in self.jobs.values()):
            raise BedrockError(400, "ConflictException", f"A job named {name} already exists.")
        job_id = "".join(secrets.choice(_ALPHABET) for _ in range(12))
        arn = f"arn:aws:bedrock:{storage.REGION}:{storage.ACCOUNT}:model-invocation-job/{job_id}"
        schedule = Schedule.plan(self.config, self.clock(), hold=self.config.take("hold_batches"))
        minimum = self.config.min_batch_records
        return Job(
            arn,
            job_id,
            name,
            token,
            model,
            role,
            input_uri,
            output_uri if output_uri.endswith("/") else output_uri + "/",
            hours,
            schedule,
            fail=self.config.take("fail_batches"),
            min_records=records.MIN_RECORDS if minimum is None else minimum,
        )

    async def _get(self, request: Request) -> Response:
        return json_response(await self._observe(self._job(request)))

    async def _stop(self, request: Request) -> Response:
        job = self._job(request)
        phase, _ = await self._phase(job)
        if phase.terminal or phase.status == "cancelling":
            status = _status(job, phase, self.clock())
            msg = f"The job cannot be stopped in its current state ({status})."
            raise _invalid(msg)
        job.stopping_at = self.clock()
        return json_response({})

    async def _list(self, request: Request) -> Response:
        query = request.query_params
        try:
            limit = int(query.get("maxResults", "1000"))
            start = int(query.get("nextToken", "0"))
        except ValueError:
            raise _invalid("Invalid maxResults or nextToken.") from None
        if not 1 <= limit <= 1000:
            raise _invalid("maxResults must be between 1 and 1000.")
        after, before = (
            _instant(query.get("submitTimeAfter")),
            _instant(query.get("submitTimeBefore")),
        )
        wanted = query.get("statusEquals")
        if wanted is not None and wanted not in _STATUSES:
            raise _invalid(f"Value '{wanted}' at 'statusEquals' failed to satisfy constraint")
        name = query.get("nameContains")
        chosen = []
        for job in self.jobs.values():
            created = job.schedule.created
            if (after is not None and created <= after) or (
                before is not None and created >= before
            ):
                continue
            if name is not None and name not in job.name:
                continue
            view = await self._observe(job)
            if wanted is None or view["status"] == wanted:
                chosen.append(view)
        if query.get("sortOrder", "Descending") == "Descending":
            chosen.reverse()
        page = chosen[start : start + limit]
        out: dict[str, Any] = {"invocationJobSummaries": page}
        if start + limit < len(chosen):
            out["nextToken"] = str(start + limit)
        return json_response(out)

    def _job(self, request: Request) -> Job:
        identifier = request.path_params["job"]
        job = self.jobs.get(identifier.rsplit("/", 1)[-1])
        if job is None or (identifier.startswith("arn:") and identifier != job.arn):
            raise BedrockError(404, "ResourceNotFoundException", f"Job {identifier} not found.")
        return job

    # -- the lifecycle ----------------------------------------------------------------------

    async def _validate(self, job: Job) -> records.Scan:
        """Fetch the input from S3 to disk once, and check it as the Validating step does."""
        bucket, _, key = job.input_uri.removeprefix("s3://").partition("/")
        path = self.data_dir / f"{job.id}.jsonl"

        def fetch() -> None:
            storage.client(self.s3_url).download_file(bucket, key, str(path))

        try:
            await asyncio.to_thread(fetch)
        except Exception as exc:  # botocore's errors: the role cannot read the object
            return records.Scan(error=f"Unable to read the input file {job.input_uri}: {exc}")
        job.path = path
        if job.fail:
            return records.Scan(error="Emulated job failure.")
        return await asyncio.to_thread(records.scan, path, job.min_records)

    async def _phase(self, job: Job) -> tuple[Phase, records.Scan | None]:
        assert job.scan is not None
        now = self.clock()
        found: records.Scan | None = None
        if now >= job.schedule.validating_end or job.stopping_at is not None:
            found = await job.scan
        total = found.total if found is not None else None
        valid = found is not None and found.error is None
        return phase_at(job.schedule, now, total, valid, job.stopping_at), found

    async def _observe(self, job: Job) -> dict[str, Any]:
        phase, found = await self._phase(job)
        status = _status(job, phase, self.clock())
        view: dict[str, Any] = {
            "jobArn": job.arn,
            "jobName": job.name,
            "modelId": job.model_id,
            "clientRequestToken": job.token,
            "roleArn": job.role_arn,
            "status": status,
            "submitTime": _iso(job.schedule.created),
            "lastModifiedTime": _iso(max([job.schedule.created, *phase.times.values()])),
            "inputDataConfig": {
                "s3InputDataConfig": {"s3Uri": job.input_uri, "s3InputFormat": "JSONL"}
            },
            "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": job.output_uri}},
            "timeoutDurationInHours": job.timeout_hours,
            "jobExpirationTime": _iso(job.schedule.created + job.timeout_hours * 3600),
            "modelInvocationType": "InvokeModel",
        }
        if found is not None and found.error is not None:
            view["message"] = found.error
        if found is not None and found.error is None:
            view["totalRecordCount"] = found.total
            view["processedRecordCount"] = phase.done
        if phase.terminal and found is not None and found.error is None:
            # As on the service, a job reports its end once its output is in S3.
            counts = await self._write(job, phase.done)
            view.update(counts)
        if phase.terminal:
            view["endTime"] = _iso(max(phase.times.values()))
        return view

    def _write(self, job: Job, done: int) -> asyncio.Future[dict[str, int]]:
        if job.written is None:
            job.written = asyncio.ensure_future(asyncio.to_thread(self._write_output, job, done))
        return job.written

    def _write_output(self, job: Job, done: int) -> dict[str, int]:
        assert job.path is not None
        lines = list(
            records.output_lines(
                job.path, job.id, job.model_id, done, self.config.failure_rate, self.config.seed
            )
        )
        errors = sum(b'"error":' in line for line in lines)
        bucket, _, prefix = job.output_uri.removeprefix("s3://").partition("/")
        name = job.input_uri.rsplit("/", 1)[-1]
        s3 = storage.client(self.s3_url)
        s3.put_object(Bucket=bucket, Key=f"{prefix}{job.id}/{name}.out", Body=b"".join(lines))
        counts = {
            "processedRecordCount": len(lines),
            "successRecordCount": len(lines) - errors,
            "errorRecordCount": errors,
        }
        manifest = {"totalRecordCount": records_total(job.path), **counts}
        s3.put_object(
            Bucket=bucket, Key=f"{prefix}{job.id}/manifest.json.out", Body=orjson.dumps(manifest)
        )
        return counts


def records_total(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def _status(job: Job, phase: Phase, now: float) -> str:
    """Our timeline's phase in Bedrock's words."""
    if phase.status == "validating":
        # Submitted, then Validating, then Scheduled, a third of the time each.
        s = job.schedule
        span = max(s.validating_end - s.created, 1e-9)
        third = int(3 * (now - s.created) / span)
        return ("Submitted", "Validating", "Scheduled")[min(max(third, 0), 2)]
    if phase.status in ("in_progress", "finalizing"):
        return "InProgress"
    if phase.status == "expired":
        return "PartiallyCompleted" if phase.done else "Expired"
    return {
        "completed": "Completed",
        "failed": "Failed",
        "cancelling": "Stopping",
        "cancelled": "Stopped",
    }[phase.status]


def _required(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        msg = f"Value null at '{name}' failed to satisfy constraint: Member must not be null"
        raise _invalid(_constraint(msg))
    return value


def _s3_uri(body: dict[str, Any], config: str, member: str) -> str:
    union = body.get(config)
    inner = union.get(member) if isinstance(union, dict) else None
    uri = inner.get("s3Uri") if isinstance(inner, dict) else None
    if not isinstance(uri, str) or not _S3.match(uri):
        raise _invalid(f"{config}.{member}.s3Uri must be an s3:// URI.")
    return uri


def _instant(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise _invalid(f"Invalid timestamp: {value}") from None
