"""Outbound HTTP to addresses that users configure (webhooks): no requests into our own network (SSRF).

A target is refused when its host is, or resolves to, a loopback, private, link-local (cloud metadata at
169.254.169.254), shared, multicast, reserved or unspecified address, unless the host is allowed by
configuration (``GASDESK_WEBHOOK_ALLOW_PRIVATE_HOSTS``). The check runs when a URL is saved and again on
every connection: :class:`CheckedTransport` resolves the name itself, checks every address and connects
to a checked address, so a DNS answer that changes after the check (rebinding) cannot slip through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpcore
import httpx

from gasdesk.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedTarget(httpcore.ConnectError):
    """A connection to an internal address was refused (httpx reports it as a ConnectError)."""


def internal_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not a public internet address, or None if it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for reason, flag in (("回环地址", address.is_loopback), ("链路本地地址", address.is_link_local),
                         ("内网地址", address.is_private), ("组播地址", address.is_multicast),
                         ("未指定地址", address.is_unspecified), ("保留地址", address.is_reserved)):
        if flag:
            return reason
    return None if address.is_global else "非公网地址"


def _normalise(hosts: Iterable[str]) -> frozenset[str]:
    return frozenset(h.strip().lower().strip("[]") for h in hosts if h.strip())


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (an IP literal resolves to itself; so do forms like 127.1)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, IPAddress] = {}
    for *_, sockaddr in infos:
        address = str(sockaddr[0])  # typed str | int for the socket families this never asks for
        seen.setdefault(address, ipaddress.ip_address(address.split("%", 1)[0]))
    return list(seen.values())


async def checked_addresses(host: str, port: int, allowed_hosts: Iterable[str]) -> list[str]:
    """The addresses to connect to for ``host``; raises :class:`BlockedTarget` if any is internal.

    All must be public: with one public and one internal answer, a client could end up on either.
    """
    name = host.lower().strip("[]")
    try:
        addresses = await resolve(name, port)
    except OSError as exc:
        raise httpcore.ConnectError(f"无法解析主机 {host}: {exc}") from exc
    if name not in _normalise(allowed_hosts):
        for address in addresses:
            reason = internal_reason(address)
            if reason:
                raise BlockedTarget(f"目标 {host} 解析为{reason} {address}，已拒绝（可在 GASDESK_WEBHOOK_ALLOW_PRIVATE_HOSTS 中放行）")
    return [str(a) for a in addresses]


async def check_public_url(url: str, allowed_hosts: Iterable[str]) -> str:
    """Validate a user-supplied http(s) URL when it is saved. Raises InvalidInput for internal targets.

    A name that does not resolve right now is accepted: it is checked again on every connection.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("地址必须以 http:// 或 https:// 开头并包含主机名", code="invalid_webhook_url")
    if parts.username or parts.password:
        raise InvalidInput("地址中不能包含用户名或密码", code="invalid_webhook_url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidInput("地址中的端口无效", code="invalid_webhook_url") from None
    try:
        await checked_addresses(parts.hostname, port, allowed_hosts)
    except BlockedTarget as exc:
        raise InvalidInput(str(exc), code="webhook_target_blocked") from None
    except httpcore.ConnectError:
        pass  # not resolvable now; every delivery resolves and checks again
    return url


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks the host itself, then connects to a checked address (TLS still verifies
    the certificate against the host name). No Unix sockets."""

    def __init__(self, allowed_hosts: Iterable[str]) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allowed = _normalise(allowed_hosts)

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None) -> httpcore.AsyncNetworkStream:
        error: Exception | None = None
        for address in await checked_addresses(host, port, self._allowed):
            try:
                return await self._inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                                     socket_options=socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"无法连接 {host}")

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise BlockedTarget("不允许连接 Unix 套接字")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class CheckedTransport(httpx.AsyncHTTPTransport):
    """An httpx transport whose every connection goes through the internal-address check. Ignores proxy
    environment variables (a proxy would make the check see the proxy, not the target)."""

    def __init__(self, allowed_hosts: Iterable[str]) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(ssl_context=httpx.create_ssl_context(trust_env=False),
                                                  network_backend=_CheckedBackend(allowed_hosts))
