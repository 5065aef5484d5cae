"""The HTTP core of :class:`~client.TierflowClient`: authentication, retries under one
``Idempotency-Key``, problem+json to exceptions, pagination, and the ``202`` answers of writes
that wait for a signature or an approval."""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from client.errors import (
    ApprovalPending,
    ResponseError,
    SignatureRequired,
    SignerError,
    SigningDeclined,
    TransportError,
    problem_error,
)
from client.intents import (
    DEFAULT_MAX_VALIDITY_S,
    ContractAbis,
    DecodedAction,
    Intent,
    TrustedDeployment,
    verify_intent,
)
from client.models import Deployment, Page
from client.pending import PendingApproval
from client.signing import KeyfileSigner, Signer, recover_address, sign_transaction

M = TypeVar("M", bound=BaseModel)

#: ``confirm(action) -> bool`` (or an awaitable of it): shown the decoded action before
#: anything is signed; False declines.
ConfirmHook = Callable[[DecodedAction], bool | Awaitable[bool]]

#: What the client sends as ``User-Agent``.
USER_AGENT = "tierflow-client/0.1"


@dataclass(frozen=True)
class RetryPolicy:
    """How often a request is tried again, with the same ``Idempotency-Key``, after a network
    error, a ``502``/``503``/``504``, or a ``409 idempotency_in_progress`` (the first try still
    running on the server). ``Retry-After`` is honoured up to ``max_wait_s``; without it the
    wait doubles from ``backoff_s``."""

    attempts: int = 4
    backoff_s: float = 0.5
    max_wait_s: float = 30.0

    def wait(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_wait_s)
        return float(min(self.backoff_s * 2 ** (attempt - 1), self.max_wait_s))


_RETRY_STATUSES = frozenset({502, 503, 504})
_RETRY_NETWORK = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _query(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not params:
        return None
    out = {k: _jsonable(v) for k, v in params.items() if v is not None}
    return {k: ("true" if v is True else "false" if v is False else v) for k, v in out.items()}


class BaseClient:
    """Requests, retries and answers; the resources are on :class:`~client.TierflowClient`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        signer: Signer | None = None,
        deployment: TrustedDeployment | None = None,
        confirm: ConfirmHook | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        abis: ContractAbis | None = None,
        max_intent_validity_s: int = DEFAULT_MAX_VALIDITY_S,
        clock: Callable[[], float] | None = None,
    ) -> None:
        sent = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
        if api_key:
            sent["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=sent, timeout=timeout, transport=transport
        )
        self.signer = signer
        self.confirm = confirm
        self.retry = retry or RetryPolicy()
        self.max_intent_validity_s = max_intent_validity_s
        self.clock = clock or time.time
        self._trusted = deployment
        self._abis = abis
        self._trusted_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the wire ------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request (retried under :attr:`retry`); a 4xx/5xx answer raises its
        :class:`~client.errors.ProblemError`. POST and PUT carry an ``Idempotency-Key``, made
        here unless given, and every retry reuses it."""
        method = method.upper()
        sent = dict(headers or {})
        if method in ("POST", "PUT", "PATCH") and "Idempotency-Key" not in sent:
            sent["Idempotency-Key"] = idempotency_key or uuid.uuid4().hex
        key = sent.get("Idempotency-Key")
        body = _jsonable(json) if json is not None else None
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._http.request(
                    method, path, params=_query(params), json=body, headers=sent
                )
            except _RETRY_NETWORK as exc:
                if attempt >= self.retry.attempts:
                    raise TransportError(
                        f"{method} {path}: {type(exc).__name__}: {exc} (after {attempt} tries"
                        + (f"; Idempotency-Key {key}" if key else "")
                        + ")",
                        idempotency_key=key,
                    ) from exc
                await asyncio.sleep(self.retry.wait(attempt, None))
                continue
            except httpx.HTTPError as exc:
                raise TransportError(f"{method} {path}: {exc}", idempotency_key=key) from exc
            if attempt < self.retry.attempts and self._retriable(response):
                wait = self.retry.wait(attempt, _retry_after(response))
                await asyncio.sleep(wait)
                continue
            if response.status_code >= 400:
                raise problem_error(
                    response.status_code,
                    self._body(response),
                    retry_after=_retry_after(response),
                    idempotency_key=key,
                )
            return response

    @staticmethod
    def _retriable(response: httpx.Response) -> bool:
        if response.status_code in _RETRY_STATUSES:
            return True
        if response.status_code == 409:
            body = BaseClient._body(response)
            return isinstance(body, dict) and body.get("code") == "idempotency_in_progress"
        return False

    @staticmethod
    def _body(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return response.text

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ResponseError(
                f"the answer to {response.request.method} {response.request.url.path} is not JSON",
                status=response.status_code,
                body=response.text[:2000],
            ) from exc

    @staticmethod
    def _model(model: type[M], body: Any, response: httpx.Response | None = None) -> M:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise ResponseError(
                f"the answer is not a {model.__name__}: {exc}",
                status=None if response is None else response.status_code,
                body=body,
            ) from exc

    # -- reads ---------------------------------------------------------------------------------

    async def _get(self, path: str, model: type[M], params: Mapping[str, Any] | None = None) -> M:
        response = await self.request("GET", path, params=params)
        return self._model(model, self._json(response), response)

    async def _page(
        self,
        path: str,
        item: type[M],
        params: Mapping[str, Any] | None = None,
        *,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[M]:
        query = {**(params or {}), "cursor": cursor, "limit": limit}
        response = await self.request("GET", path, params=query)
        body = self._json(response)
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise ResponseError(f"the answer to GET {path} is not a page", body=body)
        items = [self._model(item, i, response) for i in body["items"]]
        next_cursor = body.get("next_cursor")
        page: Page[M] = Page(items, next_cursor if isinstance(next_cursor, str) else None)
        return page

    async def _iterate(
        self,
        path: str,
        item: type[M],
        params: Mapping[str, Any] | None = None,
        *,
        limit: int | None = None,
    ) -> AsyncIterator[M]:
        cursor: str | None = None
        while True:
            page = await self._page(path, item, params, cursor=cursor, limit=limit)
            for found in page.items:
                yield found
            if page.next_cursor is None or not page.items:
                return
            cursor = page.next_cursor

    async def _csv(self, path: str, params: Mapping[str, Any] | None = None) -> str:
        """Every page of a list as one CSV text (the header once)."""
        out: list[str] = []
        cursor: str | None = None
        while True:
            query = {**(params or {}), "format": "csv", "cursor": cursor, "limit": 200}
            response = await self.request("GET", path, params=query)
            text = response.text
            if out:
                text = text.split("\r\n", 1)[1] if "\r\n" in text else ""
            out.append(text)
            cursor = response.headers.get("X-Next-Cursor")
            if not cursor:
                return "".join(out)

    # -- writes --------------------------------------------------------------------------------

    async def _write(
        self,
        method: str,
        path: str,
        model: type[M],
        json: Any = None,
        *,
        idempotency_key: str | None = None,
    ) -> M:
        """Send a write and answer its result as ``model``: directly, or, for a ``self``
        member, after signing its intent; under dual control raise
        :class:`~client.errors.ApprovalPending` with a handle to poll."""
        key = idempotency_key or uuid.uuid4().hex
        body = _jsonable(json) if json is not None else None
        response = await self.request(method, path, json=body, idempotency_key=key)
        return await self._answer(method, path, model, body, key, response)

    async def _answer(
        self,
        method: str,
        path: str,
        model: type[M],
        body: Any,
        key: str,
        response: httpx.Response,
    ) -> M:
        answer = self._json(response)
        if response.status_code != 202:
            return self._model(model, answer, response)
        status = answer.get("status") if isinstance(answer, dict) else None
        if status == "awaiting_signature":
            intent = self._model(Intent, answer.get("intent"), response)
            if self.signer is None:
                raise SignatureRequired(intent)
            signed = await self.sign_intent(intent)
            return self._model(model, signed)
        if status == "awaiting_approval":
            approval = answer.get("approval")
            approval_id = approval.get("id") if isinstance(approval, dict) else None
            approval_id = approval_id or answer.get("approval_id")

            async def replay() -> M:
                again = await self.request(method, path, json=body, idempotency_key=key)
                return await self._answer(method, path, model, body, key, again)

            raise ApprovalPending(
                PendingApproval(str(approval_id), method, path, key, answer, replay)
            )
        raise ResponseError(
            f"202 with status {status!r}: neither awaiting_signature nor awaiting_approval",
            status=202,
            body=answer,
        )

    # -- intents -------------------------------------------------------------------------------

    async def trusted_deployment(self) -> TrustedDeployment:
        """The deployment intents must be for: pinned at construction, or read once from
        ``GET /v1/deployment`` and kept for the life of the client."""
        async with self._trusted_lock:
            if self._trusted is None:
                deployment = await self._get("/v1/deployment", Deployment)
                self._trusted = TrustedDeployment.from_api(deployment)
            return self._trusted

    def _contract_abis(self) -> ContractAbis:
        if self._abis is None:
            self._abis = ContractAbis.shipped()
        return self._abis

    async def verify_intent(self, intent: Intent) -> DecodedAction:
        """Check ``intent`` for this client's signer (:func:`client.intents.verify_intent`)."""
        if self.signer is None:
            raise SignerError("this client has no signer")
        return verify_intent(
            intent,
            await self.trusted_deployment(),
            self.signer.address,
            abis=self._contract_abis(),
            now=datetime.fromtimestamp(self.clock(), UTC),
            max_validity_s=self.max_intent_validity_s,
        )

    async def _confirmed(self, action: DecodedAction, confirm: ConfirmHook | None) -> bool:
        hook = confirm or self.confirm
        if hook is None:
            return True
        verdict = hook(action)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        return bool(verdict)

    async def sign_intent(
        self,
        intent: Intent | str,
        *,
        confirm: ConfirmHook | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Verify ``intent`` (or the intent of that id), show it to ``confirm`` (the client's
        own hook unless given), sign it with the client's signer and post the signature; the
        answer of the write it completes."""
        if self.signer is None:
            raise SignerError("this client has no signer")
        if isinstance(intent, str):
            intent = await self._get(f"/v1/intents/{intent}", Intent)
        action = await self.verify_intent(intent)
        if not await self._confirmed(action, confirm):
            raise SigningDeclined(intent.id)
        signer = self.signer
        if action.kind == "typed_data" and isinstance(signer, KeyfileSigner):
            # A key in memory signs in ~0.05 ms: on the event loop's thread, not through a
            # worker thread; and the key the address was derived from made the signature, so
            # it recovers to that address by construction.
            payload: dict[str, str] = {"signature": "0x" + signer.sign_digest(action.digest).hex()}
        elif action.kind == "typed_data":
            signature = await asyncio.to_thread(signer.sign_digest, action.digest)
            if recover_address(action.digest, signature) != signer.address:
                raise SignerError("the signature does not recover to the signer's address")
            payload = {"signature": "0x" + signature.hex()}
        else:
            tx = {k: v for k, v in (intent.unsigned_tx or {}).items() if k != "from"}
            signed = await asyncio.to_thread(sign_transaction, signer, tx)
            payload = {"signed_tx": signed.raw_hex}
        response = await self.request(
            "POST",
            f"/v1/intents/{intent.id}/signature",
            json=payload,
            idempotency_key=idempotency_key,
        )
        answer = self._json(response)
        if not isinstance(answer, dict):
            raise ResponseError("the signature's answer is not an object", body=answer)
        return answer
