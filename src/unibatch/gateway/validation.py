"""Input the database cannot take, refused before it gets there.

PostgreSQL refuses a NUL character in text, so an id, cursor or name holding one would
fail the query (a 500) rather than match nothing. Path parameters and query values are
checked once for every route (`refuse_nul`, an app-wide dependency); JSON fields that
reach a text column are typed `Text`. Request bodies, stored as bytes, keep a NUL as is.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Request
from pydantic import AfterValidator

from unibatch.gateway.errors import APIError

NUL = "\x00"
_NUL_MESSAGE = "contains a NUL character (\\u0000)"


def _no_nul(value: str) -> str:
    if NUL in value:
        raise ValueError(_NUL_MESSAGE)
    return value


# A string field stored in (or looked up in) a text column.
Text = Annotated[str, AfterValidator(_no_nul)]


async def refuse_nul(request: Request) -> None:
    """Refuse a request whose path parameters or query values (or names) hold a NUL."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and NUL in value:
            raise APIError(400, f"{name}: {_NUL_MESSAGE}", param=name, code="invalid_request")
    for name, value in request.query_params.multi_items():
        if NUL in name or NUL in value:
            shown = name.replace(NUL, "\\u0000")
            raise APIError(400, f"{shown}: {_NUL_MESSAGE}", param=shown, code="invalid_request")


def check_filename(filename: str) -> str:
    """An uploaded file's name, as stored (at most 255 characters, no NUL)."""
    if NUL in filename:
        raise APIError(400, f"file: its filename {_NUL_MESSAGE}", param="file")
    return filename[:255]
