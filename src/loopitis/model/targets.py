"""Which addresses a callback or an alert may reach.

By default only public unicast addresses: a job must not turn Loopitis into a
way into the network it runs in (internal services, the cloud metadata address
169.254.169.254). An operator may allow private targets altogether, or allow
chosen networks and host names.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Ranges that are never public, named so a refusal can say which one it hit.
# Python's is_global is checked as well, but its lists changed between patch
# releases and miss some of these (multicast, 6to4 and NAT64 wrapping a
# private IPv4 address), so the guard keeps its own.
_NAMED_RANGES: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata)"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible"),
    ("64:ff9b:1::/48", "local NAT64"),
    ("100::/64", "discard"),
    ("2001::/23", "IETF protocol assignments"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "segment routing"),
    ("fc00::/7", "unique local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)
_RANGES: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(network), name) for network, name in _NAMED_RANGES
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LOCALHOST_NAMES = ("localhost", "localhost.localdomain")


def blocked_range(address: IPAddress) -> str | None:
    """The name of the non-public range ``address`` is in, or None if public."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return blocked_range(embedded)
    for network, name in _RANGES:
        if address.version == network.version and address in network:
            return name
    if not address.is_global:
        return "non-global"
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def parse_address(host: str) -> IPAddress | None:
    """``host`` as an IP address if it is one, in any form a resolver accepts.

    Besides the canonical forms this reads what ``inet_aton`` reads
    (``2130706433``, ``0x7f.1``, ``127.1``), since a resolver turns those
    into an address without asking DNS.
    """
    text = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if not text or not all(ch in "0123456789abcdefxABCDEFX." for ch in text):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def normalize_host(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Where callbacks and alerts may connect to."""

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_hosts: frozenset[str] = frozenset()

    @classmethod
    def from_entries(cls, allow_private: bool, entries: Iterable[str]) -> TargetPolicy:
        """Build from allow-list entries: networks (``10.1.0.0/16``), addresses or
        host names (``billing.internal``, or ``*.corp.internal`` for a domain)."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in (entry.strip() for entry in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(normalize_host(entry))
        return cls(allow_private, tuple(networks), frozenset(hosts))

    def host_allowed(self, host: str) -> bool:
        """True when ``host`` is on the allow-list by name."""
        name = normalize_host(host)
        if name in self.allowed_hosts:
            return True
        labels = name.split(".")
        return any(
            "*." + ".".join(labels[i:]) in self.allowed_hosts
            for i in range(1, len(labels))
        )

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """Why connecting to ``address`` (for ``host``) is refused, or None."""
        if self.host_allowed(host) or any(
            address.version == network.version and address in network
            for network in self.allowed_networks
        ):
            return None
        # Cloud metadata hands out credentials: even a deployment that allows
        # private targets reaches it only when it is allow-listed by name.
        if _unwrapped(address) in METADATA_ADDRESSES:
            return f"{address} is a cloud metadata address"
        if self.allow_private:
            return None
        name = blocked_range(address)
        if name is None:
            return None
        return f"{address} is a {name} address"

    def refusal_for_url_host(self, host: str) -> str | None:
        """Why a URL naming ``host`` can never be called, if that is plain from
        the host itself: a literal address in a refused range, or localhost."""
        address = parse_address(host)
        if address is not None:
            return self.refusal(host, address)
        name = normalize_host(host)
        if name in _LOCALHOST_NAMES or name.endswith(".localhost"):
            return self.refusal(host, ipaddress.IPv4Address("127.0.0.1"))
        return None


METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(text)
    for text in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)


def _unwrapped(address: IPAddress) -> IPAddress:
    """An IPv4 address hidden in an IPv4-mapped IPv6 one, else the address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


# The default: public addresses only, nothing allow-listed.
PUBLIC_ONLY = TargetPolicy()
