"""Signing in to the console and out (SPEC §4: ``POST /console/sign-in`` with the form field
``api_key``). The key is checked as the API checks it; the browser then holds only a session
token in an HTTP-only, SameSite=Strict cookie (:mod:`backend.console_sessions`). Both forms
are CSRF-checked (:mod:`backend.api.console_http`): the sign-in form by a double-submit
cookie, the sign-out form by the session's own token, both by Origin and Sec-Fetch-Site."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from backend import console_sessions as sessions
from backend.api.audit_state import request_audit
from backend.api.console_http import (
    CONSOLE,
    COOKIE,
    CSRF_COOKIE,
    ConsoleRoute,
    FormRefused,
    check_origin,
    clear_cookie,
    error_page,
    html,
    read_form,
    redirect,
    safe_next,
    same_token,
    set_cookie,
)
from backend.api.deps import ContextDep
from backend.errors import RateLimited, Unauthorized

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

#: How long a sign-in form stays usable.
FORM_TTL_S = 3600


def _form(request: Request, *, next_path: str | None, error: str | None, status: int) -> Response:
    token = secrets.token_urlsafe(32)
    response = html(
        CONSOLE.sign_in_page(error=error, next_path=next_path, csrf_token=token), status
    )
    set_cookie(response, request, CSRF_COOKIE, token, FORM_TTL_S)
    return response


@router.get("/sign-in")
async def sign_in_form(
    request: Request,
    ctx: ContextDep,
    next: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """The sign-in form (already signed in: on to the page asked for)."""
    if await sessions.session_caller(ctx.engine, request.cookies.get(COOKIE)) is not None:
        return redirect(safe_next(next) or CONSOLE.urls.home())
    return _form(request, next_path=safe_next(next), error=None, status=200)


@router.post("/sign-in")
async def sign_in(request: Request, ctx: ContextDep) -> Response:
    """Check the key, open a session, set its cookie and go on to ``next`` (or home)."""
    check_origin(request)
    form = await read_form(request)
    if not same_token(form.get("csrf_token"), request.cookies.get(CSRF_COOKIE)):
        raise FormRefused("the sign-in form expired or was not this site's; reload it")
    host = request.client.host if request.client else "?"
    wait = await ctx.limiter.take(f"console sign-in {host}")
    if wait:
        raise RateLimited(wait)
    next_path = safe_next(form.get("next"))
    api_key = form.get("api_key", "")
    try:
        if not api_key.strip() or len(api_key) > 300:
            raise Unauthorized("an API key is required", code="invalid_api_key")
        opened = await sessions.open_session(
            ctx.engine, api_key, ctx.settings.console_session_ttl_s
        )
    except Unauthorized as exc:
        audit = request_audit(request)
        if audit is not None:
            audit.code = exc.code
        return _form(request, next_path=next_path, error="That API key is not valid.", status=401)
    audit = request_audit(request)
    if audit is not None:
        audit.member = opened.caller.address
        audit.api_key_id = opened.caller.key_id
    # A session cookie the browser already had (another member's, say) ends here.
    await sessions.close_session(ctx.engine, request.cookies.get(COOKIE))
    response = redirect(next_path or CONSOLE.urls.home())
    set_cookie(response, request, COOKIE, opened.token, opened.ttl_s)
    clear_cookie(response, request, CSRF_COOKIE)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, ctx: ContextDep) -> Response:
    """End the session (its row is removed: a copied cookie stops working too)."""
    check_origin(request)
    form = await read_form(request)
    token = request.cookies.get(COOKIE)
    signed = await sessions.session_caller(ctx.engine, token)
    if signed is None:
        response = redirect(CONSOLE.urls.sign_in())
        clear_cookie(response, request, COOKIE)
        return response
    request.state.console_session = signed
    if not same_token(form.get("csrf_token"), signed.csrf_token):
        return error_page(request, 403, "Refused: the sign-out form was not this session's.")
    audit = request_audit(request)
    if audit is not None:
        audit.member = signed.caller.address
        audit.api_key_id = signed.caller.key_id
    await sessions.close_session(ctx.engine, token)
    response = redirect(CONSOLE.urls.sign_in())
    clear_cookie(response, request, COOKIE)
    return response
