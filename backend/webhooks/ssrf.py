"""The SSRF guard: a webhook may only target public addresses.

A URL is checked when registered and again before every attempt: its host is resolved once,
every address it resolves to must be global (no loopback, private, link-local, multicast,
reserved or unspecified address, IPv4-mapped ones included) unless loopback targets are
allowed (``TIERFLOW_WEBHOOKS_ALLOW_LOOPBACK``, the local chain's default), and the attempt
then connects to the checked address itself (the URL's host goes in ``Host`` and TLS SNI),
so a DNS answer that changes between check and connect (rebinding) is never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from backend.errors import Invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Target:
    """Where an attempt connects: the checked ``ip`` for the URL's ``host``."""

    url: str
    scheme: str
    host: str
    port: int
    ip: str
    path: str  # path and query, as sent

    @property
    def connect_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        ip = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{self.scheme}://{ip}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def check_url(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path)`` of a well-formed http(s) URL, else :class:`Invalid`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Invalid(f"not a URL: {exc}", code="webhook_url_invalid") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("a webhook URL is http(s)://host/…", code="webhook_url_invalid")
    if parts.username or parts.password:
        raise Invalid("a webhook URL carries no credentials", code="webhook_url_invalid")
    if parts.fragment:
        raise Invalid("a webhook URL has no #fragment", code="webhook_url_invalid")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname.lower(), port or default, path


def forbidden(ip: IPAddress) -> str | None:
    """Why ``ip`` is no webhook target (``None``: it is a public address)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return forbidden(ip.ipv4_mapped)
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_private:
        return "private"
    if ip.is_multicast or ip.is_reserved or ip.is_unspecified or not ip.is_global:
        return "not a public address"
    return None


async def resolve(url: str, allow_loopback: bool) -> Target:
    """Check ``url`` and pick the address to connect to (see the module docstring)."""
    scheme, host, port, path = check_url(url)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise Invalid(
                f"the webhook host {host!r} does not resolve", code="webhook_url_unresolvable"
            ) from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        if not addresses:
            raise Invalid(
                f"the webhook host {host!r} does not resolve", code="webhook_url_unresolvable"
            )
    if not allow_loopback:
        for ip in addresses:
            why = forbidden(ip)
            if why is not None:
                raise Invalid(
                    f"the webhook URL resolves to {ip} ({why}): only public addresses may be "
                    "targeted",
                    code="webhook_url_forbidden",
                )
    return Target(url, scheme, host, port, str(addresses[0]), path)
