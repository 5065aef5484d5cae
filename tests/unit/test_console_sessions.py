"""The console's sessions and form checks without a server: a session opened with a live key
resolves to its member with the roles the mirror records, and stops resolving once it expires,
its key is revoked or it is closed; the table never holds the token. ``next`` is followed
only within the console; a form from another origin is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from starlette.requests import Request

from backend import console_sessions as sessions
from backend.api.console_http import FormRefused, check_origin, safe_next
from backend.auth import store_key
from backend.errors import Unauthorized
from backend.models import ApiKey, ConsoleSession
from indexer import models as m
from ledger.roles import Role
from tests.support.fakes import Mirror, address

AUDITOR = address("auditor")


@pytest.fixture
async def mirror(tmp_path: Path) -> AsyncIterator[Mirror]:
    made = await Mirror.create(tmp_path)
    try:
        await made.insert(
            m.RoleGrant,
            {"role": "0x" + Role.AUDITOR.role_id.hex(), "account": AUDITOR, "granted_block": 1},
        )
        yield made
    finally:
        await made.engine.dispose()


async def _key(mirror: Mirror) -> str:
    async with mirror.sessions() as session, session.begin():
        _, key = await store_key(session, AUDITOR, "console")
    return key


async def test_a_session_stands_for_its_member_until_it_expires(mirror: Mirror) -> None:
    key = await _key(mirror)
    opened = await sessions.open_session(mirror.engine, key, ttl_s=3600)
    signed = await sessions.session_caller(mirror.engine, opened.token)
    assert signed is not None
    assert signed.caller.address == AUDITOR
    assert signed.caller.roles == frozenset({Role.AUDITOR})
    assert signed.csrf_token == opened.csrf_token
    async with mirror.engine.connect() as conn:
        stored = (await conn.execute(select(ConsoleSession))).one()
    assert stored.token_sha256 == sessions.digest(opened.token)
    values = [str(v) for v in stored._mapping.values()]
    assert opened.token not in values
    assert key not in values
    # a wrong or missing token is no session
    assert await sessions.session_caller(mirror.engine, opened.token + "x") is None
    assert await sessions.session_caller(mirror.engine, None) is None
    # past its expiry it is refused, and the next sign-in clears it away
    async with mirror.engine.begin() as conn:
        await conn.execute(update(ConsoleSession).values(expires_at=ConsoleSession.created_at))
    assert await sessions.session_caller(mirror.engine, opened.token) is None
    await sessions.open_session(mirror.engine, key, ttl_s=3600)
    async with mirror.engine.connect() as conn:
        left = (await conn.execute(select(ConsoleSession.token_sha256))).scalars().all()
    assert left
    assert stored.token_sha256 not in left


async def test_revoking_the_key_or_closing_ends_it(mirror: Mirror) -> None:
    key = await _key(mirror)
    first = await sessions.open_session(mirror.engine, key, ttl_s=3600)
    second = await sessions.open_session(mirror.engine, key, ttl_s=3600)
    await sessions.close_session(mirror.engine, first.token)
    assert await sessions.session_caller(mirror.engine, first.token) is None
    assert await sessions.session_caller(mirror.engine, second.token) is not None
    async with mirror.engine.begin() as conn:
        await conn.execute(update(ApiKey).values(revoked_at=1))
    assert await sessions.session_caller(mirror.engine, second.token) is None
    with pytest.raises(Unauthorized):
        await sessions.open_session(mirror.engine, key, ttl_s=3600)


async def test_a_bad_key_opens_nothing(mirror: Mirror) -> None:
    await _key(mirror)
    for bad in ("", "tf_0123456789ab_wrong", "x" * 40):
        with pytest.raises(Unauthorized):
            await sessions.open_session(mirror.engine, bad, ttl_s=3600)
    async with mirror.engine.connect() as conn:
        assert (await conn.execute(select(ConsoleSession))).first() is None


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/console", "/console"),
        ("/console/payables/7?focus=9&levels=2", "/console/payables/7?focus=9&levels=2"),
        ("/console?x=1", "/console?x=1"),
        ("/consoleevil", None),
        ("//evil.example/console", None),
        ("https://evil.example/console", None),
        ("/console/\\evil", None),
        ("/console/a\r\nSet-Cookie: x=1", None),
        ("/v1/members", None),
        ("", None),
        (None, None),
    ],
)
def test_next_stays_in_the_console(given: str | None, kept: str | None) -> None:
    assert safe_next(given) == kept


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in {"host": "tf.test", **headers}.items()]
    return Request(
        {
            "type": "http",
            "method": "POST",
            "scheme": "http",
            "path": "/console/sign-in",
            "headers": raw,
            "query_string": b"",
            "server": ("tf.test", 80),
        }
    )


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({}, True),
        ({"Origin": "http://tf.test"}, True),
        ({"Sec-Fetch-Site": "same-origin", "Origin": "http://tf.test"}, True),
        ({"Sec-Fetch-Site": "none"}, True),
        ({"Origin": "http://evil.test"}, False),
        ({"Origin": "https://tf.test"}, False),
        ({"Origin": "null"}, False),
        ({"Sec-Fetch-Site": "cross-site"}, False),
        ({"Sec-Fetch-Site": "same-site"}, False),
    ],
)
def test_forms_from_elsewhere_are_refused(headers: dict[str, str], ok: bool) -> None:
    if ok:
        check_origin(_request(headers))
    else:
        with pytest.raises(FormRefused):
            check_origin(_request(headers))
