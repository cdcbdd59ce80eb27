"""Outbound HTTP requests that a tenant can influence: one policy for all of them.

HPE calls out to ad platforms (the ads channel's audience uploads) and, through plugins,
to other systems (outgoing webhooks to URLs a workspace registers). A tenant who can
choose or steer such a URL must not reach what only the server can reach: the cloud
metadata service, the database, an admin port on loopback (SSRF). So every such request
goes through :func:`post`, which:

- takes ``https://`` only, except to a loopback host (a local test server) or when the
  caller's own setting allows plain http (:func:`check_url`);
- refuses URLs with a user or password in them;
- resolves the host once and refuses it if *any* of its addresses is not a public one
  (private, loopback, link-local, shared, multicast, reserved, unspecified; IPv4-mapped
  IPv6 included) unless the operator allows that network (``OUTBOUND_ALLOWED_NETWORKS``,
  :class:`OutboundPolicy`); then connects to that very address, so a DNS answer that
  changes between the check and the connection (rebinding) gains nothing;
- never follows a redirect: a 3xx is an answer like any other, and the caller treats
  every non-2xx as a failure. Credentials (an ``Authorization`` header) therefore never
  travel to another host.

Plugins that make requests of their own should use :func:`post` (or at least
:func:`check_url` and :meth:`OutboundPolicy.check_host`) with the policy they get in
``ChannelRuntime.outbound``.
"""

from __future__ import annotations

import dataclasses
import http.client
import ipaddress
import socket
import ssl
from collections.abc import Iterable, Mapping
from urllib.parse import SplitResult, urlsplit

from hpe_core.errors import InvalidInput

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: How much of an answer's body is read (the callers need a status and an excerpt).
MAX_RESPONSE_BYTES = 64 * 1024


class OutboundRefused(InvalidInput):
    """The URL may not be called: scheme, credentials, or an address the policy refuses."""


@dataclasses.dataclass(frozen=True)
class OutboundPolicy:
    """Which addresses outbound requests may reach.

    :param allowed_networks: networks reachable although not public (the operator's
        ``OUTBOUND_ALLOWED_NETWORKS``, e.g. ``10.1.0.0/16`` for an internal relay or
        ``127.0.0.1/32`` for a local test server)
    """

    allowed_networks: tuple[Network, ...] = ()

    @classmethod
    def of(cls, networks: Iterable[str] | None) -> OutboundPolicy:
        """A policy from CIDR strings.

        :raises ValueError: one is not a network (a setting to fix before starting)
        """
        parsed = []
        for text in networks or ():
            try:
                parsed.append(ipaddress.ip_network(str(text), strict=False))
            except ValueError as exc:
                raise ValueError(
                    f"OUTBOUND_ALLOWED_NETWORKS: {text!r} is not a network (e.g. 10.0.0.0/8)."
                ) from exc
        return cls(tuple(parsed))

    @classmethod
    def from_settings(cls, settings: Mapping) -> OutboundPolicy:
        return cls.of(settings.get("OUTBOUND_ALLOWED_NETWORKS"))

    def allows(self, address: Address) -> bool:
        """True for a public address, or one in an allowed network."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.allowed_networks):
            return True
        return address.is_global and not address.is_multicast

    def check_host(self, host: str, port: int) -> list[Address]:
        """The addresses ``host`` resolves to, every one of them allowed.

        :raises OutboundRefused: one of them is not allowed, or the host does not resolve
        """
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise OutboundRefused(f"The host {host} does not resolve: {exc}.") from exc
        addresses = []
        for _family, _type, _proto, _name, sockaddr in found:
            address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
            if not self.allows(address):
                raise OutboundRefused(
                    f"{host} resolves to {address}, a private, loopback or link-local "
                    "address: outbound requests may not reach it unless the operator allows "
                    "its network (HPE_OUTBOUND_ALLOWED_NETWORKS)."
                )
            addresses.append(address)
        if not addresses:
            raise OutboundRefused(f"The host {host} has no address.")
        return addresses


def loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback literals (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: object, *, allow_http: bool = False, max_length: int = 2000) -> SplitResult:
    """An absolute ``https://`` URL without credentials (``http://`` to a loopback host,
    or anywhere when ``allow_http``). Syntax only: :func:`post` also checks the addresses.

    :raises OutboundRefused: naming what is wrong
    """
    if not isinstance(url, str) or not url or len(url) > max_length:
        raise OutboundRefused(f"A URL of at most {max_length} characters.")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise OutboundRefused(f"Invalid port in {url!r}.") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise OutboundRefused("An absolute https:// URL.")
    if parts.username or parts.password:
        raise OutboundRefused("No user or password in the URL.")
    if parts.scheme == "http" and not (allow_http or loopback_host(parts.hostname)):
        raise OutboundRefused("Use https:// (http:// only to a loopback address).")
    return parts


@dataclasses.dataclass(frozen=True)
class Response:
    """What the server answered (any status: the caller decides what a failure is)."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        """2xx: anything else, a redirect included, is a failure."""
        return 200 <= self.status < 300


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    policy: OutboundPolicy,
    timeout: float,
    allow_http: bool = False,
) -> Response:
    """POST ``body`` to ``url`` under ``policy``: checked, pinned to the checked address,
    never redirected.

    :raises OutboundRefused: the URL or its addresses are not allowed (nothing was sent)
    :raises OSError: the connection failed or timed out (``TimeoutError`` included)
    :raises http.client.HTTPException: the server's answer was not HTTP
    """
    parts = check_url(url, allow_http=allow_http)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = policy.check_host(parts.hostname, port)[0]
    connection = _connection(parts, port, address, timeout)
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        connection.request("POST", target, body=body, headers=dict(headers))
        answer = connection.getresponse()
        return Response(
            status=answer.status,
            headers={name.lower(): value for name, value in answer.getheaders()},
            body=answer.read(MAX_RESPONSE_BYTES),
        )
    finally:
        connection.close()


def _connection(
    parts: SplitResult, port: int, address: Address, timeout: float
) -> http.client.HTTPConnection:
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal: http.client wants its brackets
    if parts.scheme == "https":
        return _PinnedHTTPSConnection(host, port, address, timeout)
    return _PinnedHTTPConnection(host, port, address, timeout)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address that was checked, whatever DNS says by now."""

    def __init__(self, host: str, port: int, address: Address, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = str(address)

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to the checked address, the certificate verified for the URL's host name."""

    def __init__(self, host: str, port: int, address: Address, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = str(address)

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
