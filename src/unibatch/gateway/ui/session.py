"""Who looks at the dashboard: the key typed into its login form, kept in a cookie.

The cookie holds the key itself, as a client's `Authorization` header does, and is
checked the same way on every page (a revoked key is out at its next click). It is
`HttpOnly` (no script reads it), `SameSite=Strict` (no other site's form or link sends
it: the dashboard's only posts are its login and logout) and `Secure` over HTTPS.

The login and logout forms are posted from the dashboard's own pages only
(`same_origin`): another site could otherwise post its own key into a visitor's browser
(who would then see that key's batches as theirs, and might upload to it) or log the
visitor out. A browser says where a post comes from (`Sec-Fetch-Site`, else `Origin`);
a client that sends neither is not a browser another site can drive, and is let in.
"""

from __future__ import annotations

from urllib.parse import urlsplit

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


class CrossSite(Exception):
    """Raised by a dashboard form posted from another site: answered 403."""


def same_origin(request: Request) -> None:
    """Refuse (`CrossSite`) a post that a browser says another site made."""
    fetched_from = request.headers.get("sec-fetch-site")
    if fetched_from is not None:
        # "none": typed or bookmarked by the user; "same-origin": our own page.
        if fetched_from not in ("same-origin", "none"):
            raise CrossSite
        return
    origin = request.headers.get("origin")
    if origin is None:
        return
    # The host (and port) the browser addressed: behind a proxy that ends TLS the scheme
    # differs from the one this server sees, the Host header does not.
    host = request.headers.get("host", "").lower()
    if origin == "null" or urlsplit(origin).netloc.lower() != host:
        raise CrossSite


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
