"""Logging of the long-running commands (`serve`, `worker`, `emulate`), with credentials
kept out of every line.

Lines quote URLs: httpx logs each request's URL at INFO, errors name the database, a
traceback may quote a connection string. Whatever the line, the formatter masks the
password of a URL (`postgresql://app:***@db/unibatch`), a key in a query string
(`?key=***`) and an API key in a header (`x-api-key: ***`). `UNIBATCH_LOG_LEVEL`
(`DEBUG`, `INFO`, ...) overrides each command's own level.

>>> redact("cannot open postgresql://app:s3cret@db:5432/x?sslmode=require&password=p")
'cannot open postgresql://app:***@db:5432/x?sslmode=require&password=***'
>>> redact("GET https://h/v1beta/files?key=AIza123&alt=media {'x-goog-api-key': 'AIza123'}")
"GET https://h/v1beta/files?key=***&alt=media {'x-goog-api-key': '***'}"
"""

from __future__ import annotations

import logging
import os
import re

from unibatch.errors import ConfigurationError

LEVEL_ENV = "UNIBATCH_LOG_LEVEL"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# scheme://user:password@ or scheme://token@
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)([^/\s@:]*)(:[^/\s@]*)?@")
_QUERY_SECRET = re.compile(
    r"([?&](?:key|api_key|api-key|apikey|access_token|token|password|secret)=)[^&\s\"'#]+",
    re.IGNORECASE,
)
_HEADER_SECRET = re.compile(
    r"((?:authorization|proxy-authorization|x-api-key|x-goog-api-key|api-key)['\"]?\s*[:=]\s*"
    r"['\"]?(?:bearer\s+|basic\s+)?)[^\s'\",}]+",
    re.IGNORECASE,
)


def _userinfo(match: re.Match[str]) -> str:
    scheme, user, password = match.groups()
    return f"{scheme}{user}:***@" if password is not None else f"{scheme}***@"


def redact(text: str) -> str:
    """`text` with URL passwords, query-string keys and header keys masked."""
    text = _USERINFO.sub(_userinfo, text)
    text = _QUERY_SECRET.sub(r"\1***", text)
    return _HEADER_SECRET.sub(r"\1***", text)


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then masks credentials in the whole line, traceback included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def level_name(default: str) -> str:
    """The level to log at: `UNIBATCH_LOG_LEVEL`, else `default` (upper case)."""
    level = (os.environ.get(LEVEL_ENV) or default).strip().upper()
    if not isinstance(logging.getLevelNamesMapping().get(level), int):
        known = "DEBUG, INFO, WARNING, ERROR, CRITICAL"
        raise ConfigurationError(f"{LEVEL_ENV}={level!r} is not a log level ({known})")
    return level


def setup(default: str) -> str:
    """Log to stderr at `level_name(default)` through the redacting formatter; returns
    the level. Every logger propagates here (uvicorn's too, given `log_config=None`)."""
    level = level_name(default)
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(RedactingFormatter(FORMAT))
    root.setLevel(level)
    return level
