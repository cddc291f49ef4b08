"""`/ui`: the dashboard's pages, rendered on the server from Jinja2 templates; a little
script on the batch pages polls `/ui/api/progress` to keep the figures live."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from unibatch.engine.views import batch_views
from unibatch.gateway.auth import Principal
from unibatch.gateway.deps import GatewayDep
from unibatch.gateway.ui import chart, reads
from unibatch.gateway.ui.session import (
    LOGIN,
    CrossSite,
    Forbidden,
    LoginRequired,
    log_in,
    log_out,
    same_origin,
    viewer,
)
from unibatch.gateway.ui.views import duration, progress, request_row

HERE = Path(__file__).parent
PAGE = 25
REQUESTS_PAGE = 50
# Batches the progress endpoint answers for at once (one page of the list).
MAX_POLLED = 100

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["when"] = lambda t: (
    time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if t else ""
)
templates.env.filters["ago"] = lambda t: duration(time.time() - t) + " ago" if t else ""
templates.env.filters["usd"] = lambda v: "" if v is None else f"${float(v):.4f}"

router = APIRouter(prefix="/ui", include_in_schema=False)


def _page(request: Request, name: str, who: Principal | None, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"who": who, **context})


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> HTMLResponse:
    return _page(request, "login.html", None, failed=False)


@router.post("/login", response_model=None)
async def login(request: Request, key: Annotated[str, Form()]) -> Response:
    same_origin(request)
    done = await log_in(request, key)
    if done is None:
        return _page(request, "login.html", None, failed=True)
    return done


@router.post("/logout")
async def logout(request: Request) -> Response:
    same_origin(request)
    return log_out()


@router.get("", response_class=HTMLResponse)
async def batch_list(
    request: Request, gw: GatewayDep, before: Annotated[str | None, Query()] = None
) -> HTMLResponse:
    who = await viewer(request)
    ids = await gw.store.read(
        lambda conn: reads.batch_page(conn, who.scope, before=before, limit=PAGE + 1)
    )
    shown = await batch_views(gw.store, ids[:PAGE])
    now = time.time()
    rows = [(b, progress(b, now)) for b in shown]
    more = ids[PAGE - 1] if len(ids) > PAGE else None
    return _page(request, "batches.html", who, rows=rows, more=more, first=before is None)


@router.get("/batches/{batch_id}", response_class=HTMLResponse)
async def batch_page(
    request: Request,
    gw: GatewayDep,
    batch_id: str,
    q: Annotated[str | None, Query(max_length=512)] = None,
    after: Annotated[str | None, Query(max_length=512)] = None,
) -> HTMLResponse:
    who = await viewer(request)
    search = (q or "").strip() or None

    def read(conn: Any) -> list[dict[str, Any]] | None:
        if not reads.may_see(conn, who.scope, batch_id):
            return None
        return reads.request_page(
            conn, batch_id, search=search, after=after, limit=REQUESTS_PAGE + 1
        )

    page = await gw.store.read(read)
    found = await batch_views(gw.store, [batch_id]) if page is not None else []
    if not found or page is None:
        return _page(request, "missing.html", who, batch_id=batch_id)
    batch = found[0]
    counts = batch.request_counts
    # The error table reads the batch's results: only on its first page (not while the
    # user pages or searches requests), and not at all when no request failed.
    errors: list[dict[str, Any]] | None = None
    if after is None and search is None:
        failed = counts.errored + counts.expired + counts.cancelled
        errors = await gw.store.read(lambda c: reads.error_classes(c, batch_id)) if failed else []
    more = None
    if len(page) > REQUESTS_PAGE:
        last = page[REQUESTS_PAGE - 1]
        more = last["custom_id"] if search else str(last["seq"])
    return _page(
        request,
        "batch.html",
        who,
        batch=batch,
        p=progress(batch),
        jobs=await gw.store.jobs_of(batch_id),
        errors=errors,
        requests=[request_row(r) for r in page[:REQUESTS_PAGE]],
        q=search or "",
        more=more,
    )


@router.get("/api/progress")
async def progress_api(
    request: Request, gw: GatewayDep, ids: Annotated[str, Query(max_length=8000)] = ""
) -> JSONResponse:
    """Live figures of the batches in `ids` (comma-separated) that the viewer may see."""
    try:
        who = await viewer(request)
    except LoginRequired:
        return JSONResponse({"error": "log in again"}, status_code=401)
    wanted = [i for i in ids.split(",") if i][:MAX_POLLED]
    allowed = await gw.store.read(
        lambda conn: [i for i in wanted if reads.may_see(conn, who.scope, i)]
    )
    now = time.time()
    shown = await batch_views(gw.store, allowed)
    return JSONResponse({b.id: progress(b, now) for b in shown})


@router.get("/keys", response_class=HTMLResponse)
async def keys_page(request: Request, gw: GatewayDep) -> HTMLResponse:
    who = await viewer(request)
    if not who.is_master:
        raise Forbidden
    keys = await gw.store.read(reads.keys_with_spend)
    return _page(request, "keys.html", who, keys=keys)


@router.get("/usage", response_class=HTMLResponse)
async def usage_page(
    request: Request, gw: GatewayDep, span: Annotated[str, Query(pattern="^(24h|14d)$")] = "24h"
) -> HTMLResponse:
    who = await viewer(request)
    start, _, _ = chart.buckets(span)
    rows = await gw.store.read(lambda conn: reads.usage_by_model(conn, who.scope, since=start))
    svg, series = chart.render(rows, span)
    return _page(request, "usage.html", who, svg=svg, series=series, span=span)


def install(app: FastAPI) -> None:
    """Mount the dashboard on `app`: its pages, its static files, its redirects."""

    async def to_login(request: Request, exc: Exception) -> Response:
        return RedirectResponse(LOGIN, status_code=303)

    async def forbidden(request: Request, exc: Exception) -> Response:
        page = _page(request, "forbidden.html", None)
        page.status_code = 403
        return page

    async def cross_site(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("posted from another site: refused", status_code=403)

    app.add_exception_handler(LoginRequired, to_login)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(CrossSite, cross_site)
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
