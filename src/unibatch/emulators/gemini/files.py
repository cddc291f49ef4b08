"""The Files API half of the Gemini emulator: resumable uploads to disk, metadata, downloads.

A component the emulator owns rather than a base class: it keeps `files` and open upload
sessions, and asks the emulator for the bytes of generated responses files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..kit import Clock, EmulatorConfig, json_response, paced, read_chunks
from .errors import GeminiError
from .wire import MAX_FILE_BYTES, FileRecord, UploadSession, new_id, page, pick

VERSIONS = ("v1", "v1beta")
Generated = Callable[[FileRecord], Iterator[bytes] | None]


class FilesAPI:
    """Files of one emulator. `generated(record)` streams a responses file's bytes, or
    returns None when its batch is gone."""

    def __init__(
        self, data_dir: Path, config: EmulatorConfig, clock: Clock, generated: Generated
    ) -> None:
        self.files: dict[str, FileRecord] = {}
        self.uploads: dict[str, UploadSession] = {}
        self._deleted: set[str] = set()
        self._dir = data_dir
        self._config = config
        self._clock = clock
        self._generated = generated

    def authorised_upload(self, request: Request) -> bool:
        """The upload URL itself authorises the chunks of a started upload."""
        return request.query_params.get("upload_id") in self.uploads

    async def upload(self, request: Request) -> Response:
        sid = request.query_params.get("upload_id")
        if sid is None:
            return await self._upload_start(request)
        session = self.uploads.get(sid)
        if session is None:
            raise GeminiError(404, "Upload session not found or expired.")
        command = {c.strip() for c in request.headers.get("x-goog-upload-command", "").split(",")}
        if "query" in command:
            return _upload_status(session, "active")
        offset = request.headers.get("x-goog-upload-offset", "0")
        if "upload" in command:
            if not offset.isdigit() or int(offset) != session.received:
                raise GeminiError(400, f"Wrong upload offset {offset}; have {session.received}.")
            limit = self._config.max_file_bytes or MAX_FILE_BYTES
            with session.path.open("ab") as fh:
                async for chunk in request.stream():
                    session.received += len(chunk)
                    if session.received > limit:
                        del self.uploads[sid]
                        session.path.unlink(missing_ok=True)
                        raise GeminiError(400, f"File exceeds the {limit} byte limit.")
                    fh.write(chunk)
        if "finalize" not in command:
            return _upload_status(session, "active")
        del self.uploads[sid]
        if session.expected is not None and session.expected != session.received:
            session.path.unlink(missing_ok=True)
            msg = f"Upload size {session.received} does not match the declared {session.expected}."
            raise GeminiError(400, msg)
        name = session.path.stem.replace("files-", "files/", 1)
        record = FileRecord(
            name,
            session.display_name,
            session.mime_type,
            session.received,
            self._clock(),
            path=session.path,
        )
        self.files[name] = record
        response = json_response({"file": record.as_json(_api_base(request))})
        response.headers["x-goog-upload-status"] = "final"
        return response

    async def _upload_start(self, request: Request) -> Response:
        if request.headers.get("x-goog-upload-protocol") != "resumable":
            raise GeminiError(400, "Only the resumable upload protocol is emulated.")
        if request.headers.get("x-goog-upload-command") != "start":
            raise GeminiError(400, "The first upload call must be 'start'.")
        raw = await request.body()
        try:
            body = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            raise GeminiError(400, "Invalid JSON payload received.") from None
        meta = body.get("file") if isinstance(body, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        declared = request.headers.get("x-goog-upload-header-content-length")
        requested = str(meta.get("name") or "")
        name = requested if requested.startswith("files/") else f"files/{new_id(12)}"
        if name in self.files:
            raise GeminiError(409, f"File {name} already exists.")
        sid = new_id(24)
        path = self._dir / f"{name.replace('/', '-')}.upload"
        path.write_bytes(b"")
        self.uploads[sid] = UploadSession(
            path,
            int(declared) if declared and declared.isdigit() else None,
            str(pick(meta, "displayName", "display_name") or ""),
            str(
                pick(meta, "mimeType", "mime_type")
                or request.headers.get("x-goog-upload-header-content-type")
                or "application/octet-stream"
            ),
        )
        url = request.url.replace(query=f"upload_id={sid}&upload_protocol=resumable")
        response = _upload_status(self.uploads[sid], "active")
        response.headers["x-goog-upload-url"] = str(url)
        response.headers["x-goog-upload-chunk-granularity"] = str(8 * 1024 * 1024)
        return response

    def _file(self, request: Request) -> FileRecord:
        name = f"files/{request.path_params['fid']}"
        record = self.files.get(name)
        if record is None:
            if name in self._deleted:
                # A repeated delete or read answers 403, not 404 (capture).
                msg = "You do not have permission to access the File or it may not exist."
                raise GeminiError(403, msg)
            raise GeminiError(404, f"File {name} not found.")
        return record

    async def get(self, request: Request) -> Response:
        record = self._file(request)
        return json_response(record.as_json(_api_base(request)))

    async def list_files(self, request: Request) -> Response:
        try:
            chosen, token = page(request, list(reversed(self.files.values())), default=10)
        except ValueError as exc:
            raise GeminiError(400, str(exc)) from None
        body: dict[str, Any] = {}
        if chosen:
            body["files"] = [f.as_json(_api_base(request)) for f in chosen]
        if token:
            body["nextPageToken"] = token
        return json_response(body)

    async def delete(self, request: Request) -> Response:
        record = self._file(request)
        if record.batch is not None:
            raise GeminiError(400, "Generated files cannot be deleted directly.")
        del self.files[record.name]
        self._deleted.add(record.name)
        # Batches copied their input at create, so the bytes can go.
        if record.path is not None:
            record.path.unlink(missing_ok=True)
        return json_response({})

    async def download(self, request: Request) -> Response:
        record = self._file(request)
        if record.batch is None:
            # The Files API serves generated files only (google-genai documents
            # `files.download` as "Files created by `upload` can't be downloaded").
            raise GeminiError(400, "Only generated files can be downloaded.")
        chunks = (
            read_chunks(record.path, self._config.download_chunk_bytes)
            if record.path is not None
            else self._generated(record)
        )
        if chunks is None:
            raise GeminiError(404, f"File {record.name} not found.")
        body = paced(chunks, lambda: self._config.download_chunk_delay)
        return StreamingResponse(body, media_type="application/octet-stream")


def _api_base(request: Request) -> str:
    version = next((v for v in VERSIONS if f"/{v}/" in request.url.path), VERSIONS[0])
    root = request.scope.get("root_path", "")
    return f"{request.url.scheme}://{request.url.netloc}{root}/{version}"


def _upload_status(session: UploadSession, status: str) -> Response:
    response = Response(b"", 200)
    response.headers["x-goog-upload-status"] = status
    response.headers["x-goog-upload-size-received"] = str(session.received)
    return response
