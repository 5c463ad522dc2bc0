"""SSRF guard for every URL ClientHub fetches on someone else's word.

A recording link in a PBX event, an attachment URL in a payload, a ``file_path`` that Telegram
returns: each names a host that an attacker may have chosen. Before any byte goes out the guard
checks that the URL is http(s), carries no credentials, names one of the hosts the caller allows
(the configured platform's own hosts; ``*.domain`` and ``.domain`` match subdomains), and that
*every* address the name resolves to is public: loopback, private, link-local (cloud metadata at
169.254.169.254), CGNAT, multicast, reserved and the IPv6 forms that embed them (IPv4-mapped,
NAT64, 6to4, Teredo) are refused unless ``allow_private_fetch`` is on (tests) or the address is in
``fetch_allow_networks`` (a PBX in the office LAN).

:class:`GuardedTransport` then connects to the address it checked, not to a second lookup of the
name (so a DNS answer that changes between check and connect, "DNS rebinding", cannot slip
through), keeping the name for the Host header and TLS (SNI and certificate check). httpx calls the
transport again for each redirect hop, so every hop is checked.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from typing import Any

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class FetchRefused(Exception):
    """The URL may not be fetched; ``reason`` says why (safe to show: no secrets in it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TooLarge(FetchRefused):
    """The response ran past the caller's size limit; nothing was kept."""


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise FetchRefused(f"cannot resolve {host}: {exc.strerror or exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class FetchPolicy:
    """What may be fetched. ``allowed_hosts`` empty means any host (still public addresses only);
    callers pass the configured platform's hosts whenever they know them."""

    allowed_hosts: tuple[str, ...] = ()
    allow_private: bool = False
    allow_networks: tuple[str, ...] = ()
    resolver: Resolver = field(default=system_resolver, compare=False)

    def host_allowed(self, host: str) -> bool:
        if not self.allowed_hosts:
            return True
        host = host.lower().rstrip(".")
        for pattern in self.allowed_hosts:
            p = pattern.lower().rstrip(".")
            if p.startswith("."):
                if host.endswith(p) or host == p[1:]:
                    return True
            elif host == p or ("*" in p and fnmatch(host, p)):
                return True
        return False

    def address_allowed(self, addr: IPAddress) -> bool:
        if self.allow_private:
            return True
        if any(addr in ipaddress.ip_network(n, strict=False) for n in self.allow_networks):
            return True
        return is_public(addr)


def policy_from_settings(
    settings: Any, *, hosts: Iterable[str] = (), allow_private: bool = False
) -> FetchPolicy:
    """The policy for one fetch site: its platform hosts plus the instance-wide switches."""
    return FetchPolicy(
        allowed_hosts=tuple(h for h in hosts if h),
        allow_private=bool(allow_private or getattr(settings, "allow_private_fetch", False)),
        allow_networks=tuple(getattr(settings, "fetch_allow_networks", ()) or ()),
    )


def is_public(addr: IPAddress) -> bool:
    """Globally routable unicast, looking through the IPv6 forms that wrap an IPv4 address."""
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = addr.ipv4_mapped or addr.sixtofour or (addr.teredo[1] if addr.teredo else None)
        if embedded is None and addr in _NAT64:
            embedded = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
    if addr.is_multicast or addr.is_unspecified or addr.is_reserved:
        return False
    if isinstance(addr, ipaddress.IPv4Address) and addr in _CGNAT:
        return False
    return addr.is_global


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    addresses: tuple[str, ...]


def check_url(url: str | httpx.URL, policy: FetchPolicy) -> Target:
    """Every check but the connection itself; raises :class:`FetchRefused`."""
    try:
        parsed = httpx.URL(str(url)) if not isinstance(url, httpx.URL) else url
    except (httpx.InvalidURL, ValueError, TypeError):
        raise FetchRefused("not a valid URL") from None
    if parsed.scheme not in ("http", "https"):
        raise FetchRefused(f"scheme {parsed.scheme!r} is not http(s)")
    if parsed.userinfo:
        raise FetchRefused("URLs with credentials are not fetched")
    host = parsed.host.lower()
    if not host:
        raise FetchRefused("URL without a host")
    if not policy.host_allowed(host):
        raise FetchRefused(f"host {host!r} is not one of {list(policy.allowed_hosts)}")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    addresses = [str(literal)] if literal is not None else policy.resolver(host, port)
    if not addresses:
        raise FetchRefused(f"{host} resolves to no address")
    for text in addresses:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
        if not policy.address_allowed(addr):
            raise FetchRefused(f"{host} resolves to the non-public address {addr}")
    return Target(host, port, tuple(addresses))


class GuardedTransport(httpx.BaseTransport):
    """Checks each request (each redirect hop too) and connects to the checked address."""

    def __init__(self, policy: FetchPolicy, inner: httpx.BaseTransport | None = None) -> None:
        self.policy = policy
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        target = check_url(request.url, self.policy)
        try:
            ipaddress.ip_address(target.host.strip("[]"))
            is_literal = True
        except ValueError:
            is_literal = False
        if is_literal:
            return self.inner.handle_request(request)
        # Pin: connect to the address just checked; the Host header and SNI keep the name. A copy,
        # so that the client resolves redirects against the URL it asked for.
        extensions = dict(request.extensions)
        if request.url.scheme == "https":
            extensions["sni_hostname"] = target.host
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=target.addresses[0]),
            headers=request.headers,
            stream=request.stream,
            extensions=extensions,
        )
        return self.inner.handle_request(pinned)

    def close(self) -> None:
        self.inner.close()


def guarded_client(policy: FetchPolicy, **kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` whose every request goes through the guard."""
    inner = kwargs.pop("transport", None)
    kwargs.setdefault("timeout", httpx.Timeout(30.0, connect=10.0))
    return httpx.Client(transport=GuardedTransport(policy, inner), **kwargs)


def iter_limited(response: httpx.Response, max_bytes: int) -> Iterator[bytes]:
    """The body in chunks, refused as soon as it passes ``max_bytes`` (declared or actual)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise TooLarge(f"the response is {declared} bytes, over {max_bytes}")
    size = 0
    for chunk in response.iter_bytes(256 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"the response is over {max_bytes} bytes")
        yield chunk


def fetch_bytes(
    url: str,
    policy: FetchPolicy,
    *,
    max_bytes: int,
    timeout: float = 30.0,
    max_redirects: int = 3,
    transport: httpx.BaseTransport | None = None,
) -> tuple[bytes, str]:
    """GET a small file (an attachment) under the guard: (body, content type)."""
    with (
        guarded_client(
            policy,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=True,
            max_redirects=max_redirects,
            transport=transport,
        ) as client,
        client.stream("GET", url) as response,
    ):
        response.raise_for_status()
        body = b"".join(iter_limited(response, max_bytes))
        return body, response.headers.get("content-type", "application/octet-stream")
