"""`/v1/files`: uploads streamed to disk, contents streamed back; output and error files
are generated from a finished batch's results on each download (their size is counted
once and kept)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import StreamingResponse

from unibatch.engine.ids import new_id
from unibatch.gateway.auth import Caller, Principal
from unibatch.gateway.context import Gateway
from unibatch.gateway.convert import (
    GENERATED_PREFIXES,
    Kind,
    file_object,
    output_lines,
    output_size,
    parse_generated,
)
from unibatch.gateway.deps import GatewayDep
from unibatch.gateway.errors import APIError, not_found
from unibatch.gateway.models import FileDeleted, FileList, FileObject, error_responses
from unibatch.gateway.validation import check_filename

router = APIRouter(
    prefix="/v1/files", tags=["files"], responses=error_responses(400, 401, 404, 413)
)
_CHUNK = 1 << 20


def file_path(gw: Gateway, file_id: str) -> Path:
    return gw.settings.files_dir / file_id


@router.post("", response_model=FileObject)
async def upload_file(
    gw: GatewayDep,
    who: Caller,
    file: Annotated[UploadFile, File(description="JSONL, one request per line")],
    purpose: Annotated[Literal["batch"], Form(description="this gateway only runs batches")],
) -> FileObject:
    """Upload a batch input file (`purpose=batch`)."""
    file_id = new_id("file")
    target = file_path(gw, file_id)
    size = 0
    try:
        # The multipart parser spooled the upload to a temporary file; copy it over in
        # chunks so memory stays flat whatever the size.
        async with await anyio.open_file(target, "wb") as out:
            while chunk := await file.read(_CHUNK):
                size += len(chunk)
                await out.write(chunk)
        now = time.time()
        keep = gw.settings.file_expiry_days * 86400
        row = {
            "id": file_id,
            "key_id": who.key_id,
            "filename": check_filename(file.filename or "upload.jsonl"),
            "purpose": purpose,
            "bytes": size,
            "created_at": now,
            "expires_at": now + keep if keep else None,
        }
        await gw.store.add_file(row)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return file_object(row)


@router.get("", response_model=FileList)
async def list_files(
    gw: GatewayDep,
    who: Caller,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 10000,
    order: Literal["asc", "desc"] = "desc",
    purpose: str | None = None,
) -> FileList:
    """Files of this key (every key's for the master key): uploads not yet expired, and
    the output and error files (`purpose` batch_output) of its batches that ended."""
    rows = await gw.store.list_files(
        who.scope,
        after=after,
        limit=limit + 1,
        descending=order == "desc",
        purpose=purpose,
        generated=GENERATED_PREFIXES,
        now=time.time(),
    )
    data = [file_object(await _sized(gw, r)) for r in rows[:limit]]
    return FileList(
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=len(rows) > limit,
    )


async def _sized(gw: Gateway, row: dict[str, Any]) -> dict[str, Any]:
    """A listed file with its size (a generated file's is counted on first sight)."""
    if row["bytes"] is None:
        return {**row, "bytes": await _output_bytes(gw, row["batch_id"], row["kind"])}
    return row


async def sweep_expired_files(gw: Gateway, now: float) -> int:
    """Delete the expired uploads, rows first (they are gone for callers at once), then
    their bytes; how many. A crash in between leaves only bytes no row names."""
    gone = 0
    while ids := await gw.store.expired_files(now):
        for file_id in ids:
            file_path(gw, file_id).unlink(missing_ok=True)
        gone += len(ids)
    return gone


async def _generated(gw: Gateway, who: Principal, file_id: str) -> tuple[Kind, str] | None:
    """(kind, batch id) when `file_id` is an output file this caller may read."""
    parsed = parse_generated(file_id)
    if parsed is None:
        return None
    kind, batch_id = parsed
    owner = await gw.store.owned_batch(batch_id, who.scope)
    if owner is None:
        raise not_found("file", file_id)
    batch = await gw.engine.get_batch(batch_id, importing=True)
    # A failed batch whose requests were sent has results like any other that ended.
    if not batch.status.terminal:
        raise not_found("file", file_id)
    return kind, batch_id


async def _output_bytes(gw: Gateway, batch_id: str, kind: Kind) -> int:
    """A generated file's size: rendered and counted on the first request only (a large
    batch's file takes seconds to render), then read back."""
    size = await gw.store.output_size(batch_id, kind)
    if size is None:
        size = await output_size(gw.engine, batch_id, kind)
        await gw.store.save_output_size(batch_id, kind, size)
    return size


async def _counted(gw: Gateway, batch_id: str, kind: Kind) -> AsyncIterator[bytes]:
    """A generated file's lines; a download that runs to the end keeps its size."""
    size = 0
    async for line in output_lines(gw.engine, batch_id, kind):
        size += len(line)
        yield line
    await gw.store.save_output_size(batch_id, kind, size)


@router.get("/{file_id}", response_model=FileObject)
async def retrieve_file(gw: GatewayDep, who: Caller, file_id: str) -> FileObject:
    generated = await _generated(gw, who, file_id)
    if generated is not None:
        kind, batch_id = generated
        batch = await gw.engine.get_batch(batch_id)
        return FileObject(
            id=file_id,
            bytes=await _output_bytes(gw, batch_id, kind),
            created_at=int(batch.finished_at or batch.created_at),
            filename=f"{batch_id}_{kind}.jsonl",
            purpose="batch_output",
        )
    row = await gw.store.get_file(file_id, who.scope)
    if row is None:
        raise not_found("file", file_id)
    return file_object(row)


async def _read_file(path: Path) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as handle:
        while chunk := await handle.read(_CHUNK):
            yield chunk


@router.get(
    "/{file_id}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def file_content(gw: GatewayDep, who: Caller, file_id: str) -> StreamingResponse:
    """The file's bytes, streamed (JSONL)."""
    generated = await _generated(gw, who, file_id)
    if generated is not None:
        kind, batch_id = generated
        return StreamingResponse(
            _counted(gw, batch_id, kind), media_type="application/octet-stream"
        )
    row = await gw.store.get_file(file_id, who.scope)
    path = file_path(gw, file_id)
    if row is None or not path.exists():
        raise not_found("file", file_id)
    return StreamingResponse(_read_file(path), media_type="application/octet-stream")


@router.delete("/{file_id}", response_model=FileDeleted)
async def delete_file(gw: GatewayDep, who: Caller, file_id: str) -> FileDeleted:
    if await _generated(gw, who, file_id) is not None:
        raise APIError(
            400,
            "output and error files are generated from results and cannot be deleted",
            param="file_id",
        )
    if not await gw.store.delete_file(file_id, who.scope):
        raise not_found("file", file_id)
    file_path(gw, file_id).unlink(missing_ok=True)
    return FileDeleted(id=file_id)
