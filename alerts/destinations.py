"""Where an alert webhook may go: public addresses only, unless a setting allows more.

An alert webhook URL is typed by staff but fetched by the server, so it must
not become a way to reach what only the server can (server-side request
forgery): loopback, private, link-local, shared (CGNAT), multicast and
reserved addresses are refused, however they are spelled (``2130706433``,
``0x7f.1``, ``[::ffff:127.0.0.1]``), and so is any scheme but http and https.
``ALERTS['WEBHOOK_ALLOWED_NETWORKS']`` lists networks allowed anyway.

Two checks: ``webhook_url_problem`` when a recipient is saved (the scheme,
and a host that is an address or a ``localhost`` name: nothing is looked up),
and ``guarded_connection`` when an alert is sent: the host is resolved, every
address it resolves to must be allowed, and the connection is made to an
address that was checked, so a name that resolves differently a moment later
(DNS rebinding) cannot swap it.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from alerts.conf import alert_settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMES = ("http", "https")
#: IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64).
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class DisallowedDestination(ValueError):
    """The URL or an address its host resolves to may not receive alerts."""


def _embedded_ipv4(address: Address) -> Address:
    """The IPv4 address an IPv6 one stands for (mapped, NAT64, 6to4), else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def address_allowed(address: Address) -> bool:
    """Public (and not multicast), or inside an allowed network."""
    allowed = alert_settings().webhook_allowed_networks
    for candidate in {address, _embedded_ipv4(address)}:
        if any(
            candidate.version == network.version and candidate in network
            for network in allowed
        ):
            return True
    target = _embedded_ipv4(address)
    return target.is_global and not target.is_multicast


def literal_address(host: str) -> Address | None:
    """``host`` as an IP address if it is one in any spelling a resolver accepts."""
    host = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:  # the legacy forms: 2130706433, 0177.0.0.1, 0x7f.1, 127.1
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _refusal(shown: str, address: Address) -> str:
    return (
        f"{shown} is not a public address ({address}): alert webhooks may not "
        "reach loopback, private, link-local or reserved addresses. List the "
        "network in ALERTS_WEBHOOK_ALLOWED_NETWORKS to allow it."
    )


def webhook_url_problem(url: str) -> str | None:
    """Why ``url`` may not receive alerts, as a sentence; None when it may (for now)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:
        return "This is not a valid URL."
    if parts.scheme.lower() not in SCHEMES:
        return (
            f"Alert webhooks are sent over http or https, not {parts.scheme or 'a bare path'!r}: "
            "give an https:// URL."
        )
    if not host:
        return "The URL names no host."
    address = literal_address(host)
    if address is not None:
        if not address_allowed(address):
            return _refusal(f"The host {host!r}", address)
        return None
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        localhost = ipaddress.ip_address("127.0.0.1")
        if not address_allowed(localhost):
            return _refusal(f"The host {host!r}", localhost)
    return None


def checked_addresses(host: str, port: int) -> list[tuple[int, Address]]:
    """Every (family, address) ``host`` resolves to, when all are allowed.

    ``DisallowedDestination`` when any is not: a name with one private
    address among public ones is refused whole (the resolver's next answer
    could put it first). ``OSError`` when the name does not resolve.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[tuple[int, Address]] = []
    for family, _, _, _, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if not address_allowed(address):
            raise DisallowedDestination(_refusal(f"The host {host!r}", address))
        if (family, address) not in found:
            found.append((family, address))
    return found


def guarded_connection(
    address: tuple[str, int],
    timeout: float | object = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
    source_address: tuple[str, int] | None = None,
) -> socket.socket:
    """``socket.create_connection`` to an address of ``host`` that was checked."""
    host, port = address
    error: OSError | None = None
    for _, checked in checked_addresses(host, port):
        try:
            sock = socket.create_connection(
                (str(checked), port), timeout, source_address
            )
        except OSError as exc:
            error = exc
            continue
        peer = ipaddress.ip_address(sock.getpeername()[0].split("%", 1)[0])
        if peer != checked or not address_allowed(peer):  # never, but cheap to say
            sock.close()
            raise DisallowedDestination(_refusal(f"The peer of {host!r}", peer))
        return sock
    raise error or OSError(f"{host!r} resolves to no address.")
