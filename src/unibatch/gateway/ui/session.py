"""Who looks at the dashboard: the key typed into its login form, kept in a cookie.

The cookie holds the key itself, as a client's `Authorization` header does, and is
checked the same way on every page (a revoked key is out at its next click). It is
`HttpOnly` (no script reads it), `SameSite=Strict` (no other site's form or link sends
it: the dashboard's only posts are its login and logout) and `Secure` over HTTPS.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from unibatch.gateway.auth import Principal, authenticate
from unibatch.gateway.context import gateway
from unibatch.gateway.errors import APIError

COOKIE = "unibatch_key"
LOGIN = "/ui/login"


class LoginRequired(Exception):
    """Raised by a page whose viewer has no valid key: answered by the login form."""


class Forbidden(Exception):
    """Raised by a page only the master key may see."""


async def viewer(request: Request) -> Principal:
    """The principal of the key in the request's cookie, or `LoginRequired`."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequired
    try:
        return await authenticate(gateway(request), token)
    except APIError as exc:
        if exc.status == 401:
            raise LoginRequired from None
        raise


async def log_in(request: Request, key: str) -> Response | None:
    """A redirect to the dashboard that sets the cookie, or None when `key` is no key."""
    try:
        await authenticate(gateway(request), key.strip())
    except APIError:
        return None
    response = RedirectResponse("/ui", status_code=303)
    response.set_cookie(
        COOKIE,
        key.strip(),
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def log_out() -> Response:
    response = RedirectResponse(LOGIN, status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response
