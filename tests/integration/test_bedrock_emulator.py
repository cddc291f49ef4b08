"""The Bedrock emulator, driven by boto3's `bedrock` and `s3` clients over loopback HTTP:
the whole batch inference flow as AWS's own SDK runs it, with moto's server as S3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.support.clock import ShiftedClock
from tests.support.waiting import polled
from unibatch.emulators import BedrockEmulator, RunningEmulator

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
ROLE = "arn:aws:iam::123456789012:role/BatchRole"
BUCKET = "judge-bucket"
AWS = {
    "region_name": "us-east-1",
    "aws_access_key_id": "AKIDEXAMPLE",
    "aws_secret_access_key": "secret",
    # Our own retry tests want every error, not botocore's retries of it.
    "config": Config(retries={"total_max_attempts": 1}),
}


def bedrock_of(emulator: RunningEmulator) -> BedrockEmulator:
    found = emulator.emulators["bedrock"]
    assert isinstance(found, BedrockEmulator)
    return found


@pytest.fixture
def clients(emulator: RunningEmulator) -> Iterator[tuple[Any, Any]]:
    s3 = boto3.client("s3", endpoint_url=bedrock_of(emulator).s3_url, **AWS)
    bedrock = boto3.client("bedrock", endpoint_url=emulator.base_url("bedrock"), **AWS)
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    yield bedrock, s3
    bedrock.close()
    s3.close()


def put_records(s3: Any, key: str, n: int) -> str:
    records = [
        {
            "recordId": f"REC{i:08d}",
            "modelInput": {
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": 100,
                "messages": [{"role": "user", "content": [{"type": "text", "text": f"q {i}"}]}],
            },
        }
        for i in range(n)
    ]
    body = "".join(json.dumps(r) + "\n" for r in records).encode()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return f"s3://{BUCKET}/{key}"


def create(bedrock: Any, name: str, input_uri: str, **extra: Any) -> str:
    answer = bedrock.create_model_invocation_job(
        jobName=name,
        roleArn=ROLE,
        modelId=MODEL,
        inputDataConfig={"s3InputDataConfig": {"s3Uri": input_uri, "s3InputFormat": "JSONL"}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/out/"}},
        **extra,
    )
    return str(answer["jobArn"])


def until(bedrock: Any, arn: str, statuses: set[str]) -> dict[str, Any]:
    job = polled(
        lambda: bedrock.get_model_invocation_job(jobIdentifier=arn),
        lambda j: j["status"] in statuses,
        str(statuses),
    )
    return dict(job)


def output_records(s3: Any, arn: str) -> list[dict[str, Any]]:
    job_id = arn.rsplit("/", 1)[-1]
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"out/{job_id}/")
    keys = sorted(item["Key"] for item in listed["Contents"])
    assert keys == [f"out/{job_id}/in.jsonl.out", f"out/{job_id}/manifest.json.out"]
    text = s3.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read().decode()
    return [json.loads(line) for line in text.splitlines()]


def test_whole_flow_with_boto3(
    clients: tuple[Any, Any], emulator: RunningEmulator, emulator_clock: ShiftedClock
) -> None:
    bedrock, s3 = clients
    arn = create(bedrock, "judge-1", put_records(s3, "in.jsonl", 5), clientRequestToken="tok-1")
    assert arn.startswith("arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/")
    # The same token again is the same job (the operation is idempotent).
    same = create(bedrock, "judge-1", f"s3://{BUCKET}/in.jsonl", clientRequestToken="tok-1")
    assert same == arn
    done = until(bedrock, arn, {"Completed", "Failed"})
    assert done["status"] == "Completed", done.get("message")
    assert (done["totalRecordCount"], done["successRecordCount"]) == (5, 5)
    assert done["endTime"] >= done["submitTime"]
    rows = output_records(s3, arn)
    assert sorted(r["recordId"] for r in rows) == [f"REC{i:08d}" for i in range(5)]
    assert all(r["modelOutput"]["content"][0]["text"].startswith("Echo: ") for r in rows)
    manifest = s3.get_object(Bucket=BUCKET, Key=f"out/{arn.rsplit('/', 1)[-1]}/manifest.json.out")
    assert json.loads(manifest["Body"].read())["successRecordCount"] == 5

    # A second job, held in progress, stopped through the SDK with its finished records.
    bedrock_of(emulator).config.in_progress_seconds = 20_000.0
    held = create(bedrock, "judge-2", put_records(s3, "in.jsonl", 10))
    until(bedrock, held, {"InProgress"})
    emulator_clock.advance(bedrock_of(emulator).config.scaled(10_000.0))
    bedrock.stop_model_invocation_job(jobIdentifier=held)
    assert bedrock.get_model_invocation_job(jobIdentifier=held)["status"] == "Stopping"
    emulator_clock.advance(60.0)
    stopped = until(bedrock, held, {"Stopped"})
    assert 0 < stopped["successRecordCount"] < 10
    assert len(output_records(s3, held)) == stopped["successRecordCount"]

    pages = bedrock.get_paginator("list_model_invocation_jobs").paginate(
        PaginationConfig={"PageSize": 1}
    )
    listed = [j["jobArn"] for page in pages for j in page["invocationJobSummaries"]]
    assert listed == [held, arn]
    named = bedrock.list_model_invocation_jobs(nameContains="judge-2")["invocationJobSummaries"]
    assert [j["jobArn"] for j in named] == [held]
    stopped_only = bedrock.list_model_invocation_jobs(statusEquals="Stopped")
    assert [j["jobName"] for j in stopped_only["invocationJobSummaries"]] == ["judge-2"]
    # The bare 12-character id names the job too.
    assert bedrock.get_model_invocation_job(jobIdentifier=arn.rsplit("/", 1)[-1])["jobArn"] == arn


def test_errors_are_the_modeled_exceptions(
    clients: tuple[Any, Any], emulator: RunningEmulator
) -> None:
    bedrock, s3 = clients
    uri = put_records(s3, "in.jsonl", 2)
    with pytest.raises(bedrock.exceptions.ResourceNotFoundException):
        bedrock.get_model_invocation_job(jobIdentifier="abcdefghijkl")
    with pytest.raises(bedrock.exceptions.ValidationException, match="model identifier"):
        bedrock.create_model_invocation_job(
            jobName="bad-model",
            roleArn=ROLE,
            modelId="acme.unknown-model",
            inputDataConfig={"s3InputDataConfig": {"s3Uri": uri}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/out/"}},
        )
    create(bedrock, "twice", uri)
    with pytest.raises(bedrock.exceptions.ConflictException):
        create(bedrock, "twice", uri)
    bedrock_of(emulator).inject_faults(1, status=429)
    with pytest.raises(bedrock.exceptions.ThrottlingException):
        bedrock.list_model_invocation_jobs()


def test_too_few_records_fail_validation(
    clients: tuple[Any, Any], emulator: RunningEmulator
) -> None:
    bedrock, s3 = clients
    bedrock_of(emulator).config.min_batch_records = None  # the service's own minimum
    arn = create(bedrock, "small", put_records(s3, "in.jsonl", 3))
    failed = until(bedrock, arn, {"Failed", "Completed"})
    assert failed["status"] == "Failed"
    assert "less than the minimum of 100" in failed["message"]


def test_missing_input_fails_validation(clients: tuple[Any, Any]) -> None:
    bedrock, _ = clients
    arn = create(bedrock, "nothing", f"s3://{BUCKET}/nowhere.jsonl")
    failed = until(bedrock, arn, {"Failed", "Completed"})
    assert failed["status"] == "Failed" and "Unable to read" in failed["message"]
