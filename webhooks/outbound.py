"""Where webhooks may go: the URL rules, the address check, and a connection to that address.

The host is resolved once per attempt; every address it resolves to must be public (or inside
a network of WEBHOOK_ALLOW_NETS), and the request connects to the checked address itself, so a
DNS answer that changes between the check and the connection cannot send it elsewhere. TLS
still verifies the certificate against the host name (SNI and hostname check). Redirects are
never followed: a 3xx is an answer like any other non-2xx.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3

from core.errors import ValidationFailed

# Cloud metadata services that are not caught by the private/link-local ranges on every
# platform (Alibaba Cloud's sits in the shared address space 100.64.0.0/10).
METADATA = (ipaddress.ip_network("100.100.100.200/32"), ipaddress.ip_network("fd00:ec2::254/128"))
MAX_URL = 2_000


class Refused(Exception):
    """A URL or address outbound policy refuses (the message says why)."""

    def __init__(self, message: str, code: str = "url_refused") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Target:
    """A parsed endpoint URL."""

    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """Return every address a host name resolves to (IPv4 and IPv6), in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


class OutboundPolicy:
    """Check endpoint URLs and the addresses they resolve to; open pinned connections."""

    def __init__(
        self,
        *,
        allow_http: bool = False,
        allow_nets: Iterable[str] = (),
        resolver: Resolver = system_resolver,
        timeout_s: float = 15.0,
        max_pools: int = 512,
        pool_size: int = 16,
    ) -> None:
        self.allow_http = allow_http
        self.allow_nets = [ipaddress.ip_network(n.strip(), strict=False) for n in allow_nets]
        self.resolver = resolver
        self.timeout = urllib3.Timeout(total=timeout_s)
        self.max_pools = max_pools
        # Connections kept per endpoint: as many as sends may run at once (WEBHOOK_CONCURRENCY),
        # or sends beyond it each open a connection that is closed after one request.
        self.pool_size = pool_size
        self._pools: dict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()
        self._verdicts: dict[str, bool] = {}  # address -> allowed(address), which never changes

    # -- URLs --------------------------------------------------------------------------------
    def parse(self, url: str) -> Target:
        """Parse an endpoint URL, or raise Refused with the reason."""
        if not isinstance(url, str) or not url or len(url) > MAX_URL:
            raise Refused(f"the URL must be 1-{MAX_URL} characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise Refused(f"not a valid URL: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in ("https", "http"):
            raise Refused("the URL must start with https://")
        if scheme == "http" and not self.allow_http:
            raise Refused("the URL must use https (http is allowed only by WEBHOOK_ALLOW_HTTP)")
        if parts.username is not None or parts.password is not None:
            raise Refused("the URL must not carry a user name or password")
        if not parts.hostname:
            raise Refused("the URL has no host")
        if parts.fragment:
            raise Refused("the URL must not have a #fragment")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return Target(scheme, parts.hostname, port or (443 if scheme == "https" else 80), path)

    def check(self, url: str) -> Target:
        """Parse a URL and check where its host resolves now (at registration), or raise."""
        target = self.parse(url)
        self.resolve(target)
        return target

    def validate(self, url: str, field: str = "url") -> str:
        """check() for the API: a refusal becomes a 422 naming the field."""
        try:
            self.check(url)
        except Refused as exc:
            raise ValidationFailed(str(exc), code=exc.code, field=field) from None
        return url

    # -- addresses ---------------------------------------------------------------------------
    def allowed(self, address: str) -> bool:
        """Tell whether one address may be connected to."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        mapped = getattr(ip, "ipv4_mapped", None)
        if mapped is not None:
            ip = mapped
        if any(ip in net for net in self.allow_nets):
            return True
        if any(ip in net for net in METADATA):
            return False
        # is_global is False for loopback, private, link-local (169.254.169.254 included),
        # shared (100.64/10), documentation, reserved and unspecified addresses.
        return ip.is_global and not ip.is_multicast

    def _allowed(self, address: str) -> bool:
        """allowed(), remembered per address (parsing it was ~2 % of a sender's CPU)."""
        verdict = self._verdicts.get(address)
        if verdict is None:
            if len(self._verdicts) >= 4096:
                self._verdicts.clear()
            verdict = self._verdicts[address] = self.allowed(address)
        return verdict

    def resolve(self, target: Target) -> str:
        """Return the address to connect to; every address of the host must be allowed."""
        try:
            ipaddress.ip_address(target.host)
            addresses = [target.host]
        except ValueError:
            try:
                addresses = self.resolver(target.host, target.port)
            except OSError as exc:
                raise Refused(f"cannot resolve {target.host}: {exc}", "unresolvable") from None
        if not addresses:
            raise Refused(f"{target.host} resolves to no address", "unresolvable")
        refused = [a for a in addresses if not self._allowed(a)]
        if refused:
            raise Refused(
                f"{target.host} resolves to {refused[0]}, a loopback, private, link-local or "
                "metadata address (see WEBHOOK_ALLOW_NETS)",
                "address_refused",
            )
        return addresses[0]

    # -- requests ----------------------------------------------------------------------------
    def post(self, url: str, body: bytes, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        """POST to the checked address of a URL (no redirects, no retries, the timeout)."""
        target = self.parse(url)
        address = self.resolve(target)
        pool = self._pool(target, address)
        return pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": target.host_header},
            redirect=False,
            retries=False,
            timeout=self.timeout,
            preload_content=False,
            assert_same_host=False,
        )

    def _pool(self, target: Target, address: str) -> urllib3.HTTPConnectionPool:
        key = (target.scheme, address, target.port, target.host)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                if len(self._pools) >= self.max_pools:
                    for old in list(self._pools.values())[: self.max_pools // 4]:
                        old.close()
                    self._pools = dict(list(self._pools.items())[self.max_pools // 4 :])
                if target.scheme == "https":
                    pool = urllib3.HTTPSConnectionPool(
                        address,
                        target.port,
                        maxsize=self.pool_size,
                        server_hostname=target.host,
                        assert_hostname=target.host,
                    )
                else:
                    pool = urllib3.HTTPConnectionPool(address, target.port, maxsize=self.pool_size)
                self._pools[key] = pool
            return pool

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()
