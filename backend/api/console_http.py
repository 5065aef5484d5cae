"""The console's HTTP plumbing: HTML responses with their security headers, the session
cookie, the checks on the console's two forms (sign-in, sign-out), and a route class that
answers a domain error with an HTML page instead of problem+json.

- Cookies: ``tf_console`` (the session token; HttpOnly, SameSite=Strict, Path=/console,
  Secure over HTTPS) and, before sign-in, ``tf_csrf`` (the sign-in form's double-submit
  token, same flags).
- A form POST is accepted only from the console itself: ``Sec-Fetch-Site`` absent,
  ``same-origin`` or ``none``; ``Origin`` absent or this host's; and its ``csrf_token`` field
  equal to the cookie's (sign-in) or the session's (sign-out), compared in constant time.
- Every page: ``Content-Security-Policy`` (``default-src 'self'``; no inline script or style
  anywhere in the console), ``X-Frame-Options: DENY``, ``Referrer-Policy: same-origin``,
  ``X-Content-Type-Options: nosniff``, ``Cache-Control: no-store``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any
from urllib.parse import parse_qs, quote

import aiohttp
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from web3.exceptions import ProviderConnectionError

from backend.api.audit_state import request_audit
from backend.api.problems import status_of
from backend.console import Console
from backend.console_sessions import Signed
from backend.errors import DomainError, Unavailable
from ledger.errors import ChainUnavailableError

log = logging.getLogger("tierflow.console")

COOKIE = "tf_console"
CSRF_COOKIE = "tf_csrf"
COOKIE_PATH = "/console"
FORM_TYPE = "application/x-www-form-urlencoded"

CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

#: The one renderer of the app (its Jinja2 environment is built once).
CONSOLE = Console()


class SignInNeeded(Exception):
    """No live session: the page redirects to the sign-in form."""


class FormRefused(Exception):
    """A form POST that did not come from the console's own page (403)."""


def html(content: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(content, status_code=status, headers=SECURITY_HEADERS)


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        name,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def safe_next(value: str | None) -> str | None:
    """A path under ``/console`` to go back to after sign-in; anything else (another site,
    ``//host``, a backslash trick) is dropped."""
    if not value or len(value) > 1000:
        return None
    if any(c in value for c in "\\\r\n\t") or value.startswith("//"):
        return None
    if value == COOKIE_PATH or value.startswith((COOKIE_PATH + "/", COOKIE_PATH + "?")):
        return value
    return None


def sign_in_url(next_path: str | None) -> str:
    target = "/console/sign-in"
    return f"{target}?next={quote(next_path, safe='')}" if next_path else target


def check_origin(request: Request) -> None:
    """Refuse a form POST sent from another site (before any token is looked at)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise FormRefused(f"a form sent from a {site} page")
    origin = request.headers.get("origin")
    if origin is not None:
        host = request.headers.get("host", "")
        if origin != f"{request.url.scheme}://{host}":
            raise FormRefused("a form sent from another origin")


def same_token(given: str | None, expected: str | None) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


async def read_form(request: Request) -> Mapping[str, str]:
    """An urlencoded form's fields (the first value of each)."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != FORM_TYPE:
        raise FormRefused("the console's forms are sent urlencoded")
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormRefused("the form is not UTF-8") from exc
    fields = parse_qs(text, keep_blank_values=True, max_num_fields=20)
    return {k: v[0] for k, v in fields.items()}


def viewer_of(request: Request) -> dict[str, Any] | None:
    """``{address, name, roles}`` of the signed-in member, as the pages take it."""
    signed: Signed | None = getattr(request.state, "console_session", None)
    if signed is None:
        return None
    name = getattr(request.state, "console_name", None)
    return {
        "address": signed.caller.address,
        "name": name,
        "roles": sorted(r.value for r in signed.caller.roles),
    }


def csrf_of(request: Request) -> str | None:
    signed: Signed | None = getattr(request.state, "console_session", None)
    return None if signed is None else signed.csrf_token


def error_page(request: Request, status: int, detail: str | None) -> HTMLResponse:
    return html(
        CONSOLE.error_page(
            status, detail=detail, viewer=viewer_of(request), csrf_token=csrf_of(request)
        ),
        status,
    )


class ConsoleRoute(APIRoute):
    """A console route: a domain error is an HTML error page (a member asking for another's
    payable gets the same 404 as for one that does not exist), bad query parameters a 400
    page, a missing session a redirect to the sign-in form."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInNeeded:
                path = request.url.path
                if request.url.query:
                    path += "?" + request.url.query
                return redirect(sign_in_url(safe_next(path)))
            except FormRefused as exc:
                _record(request, "console_form_refused")
                return error_page(request, 403, f"Refused: {exc}.")
            except RequestValidationError:
                _record(request, "invalid_request")
                return error_page(request, 400, "The address asks for something invalid.")
            except ChainUnavailableError:
                return error_page(request, 503, "The ledger node is unavailable; retry later.")
            except DomainError as exc:
                _record(request, exc.code)
                status = status_of(exc)
                detail = exc.detail
                if isinstance(exc, Unavailable):
                    status = 503
                return error_page(request, status, detail)
            except (aiohttp.ClientError, ProviderConnectionError):
                _record(request, "chain_unavailable")
                return error_page(request, 503, "The ledger node is unavailable; retry later.")
            except Exception:
                # As the API's handler: logged with the request id, never shown.
                audit = request_audit(request)
                request_id = audit.request_id if audit is not None else "-"
                log.exception("console page failed (request %s)", request_id)
                _record(request, "internal_error")
                return error_page(
                    request, 500, f"Something went wrong. Quote request id {request_id}."
                )

        return run


def _record(request: Request, code: str) -> None:
    audit = request_audit(request)
    if audit is not None:
        audit.code = code
