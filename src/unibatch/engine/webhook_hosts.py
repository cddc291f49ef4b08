"""Which addresses a webhook may be sent to.

The worker POSTs to a registered URL from inside the deployment, so a key holder who
could name any address could make it call services that are not meant to be reachable
from outside (a cloud metadata endpoint, an admin port on loopback). A virtual key's URL
must therefore name, and resolve to, public addresses only, unless the deployment allows
private ones (`UNIBATCH_WEBHOOK_PRIVATE_HOSTS=true`, for receivers on its own network).
The master key is the operator and may register any URL.

Checking at registration is not enough: the key holder controls the name's DNS, and can
point it at a private address once the URL is registered (DNS rebinding). So each
delivery to a virtual key's endpoint resolves the name again, refuses it if any address
is private, and connects to the address it checked (`pin_public`), with the name kept in
the `Host` header and, over TLS, as the server name the certificate is checked against.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import httpx

from unibatch.errors import InputError

_ALLOWING = "UNIBATCH_WEBHOOK_PRIVATE_HOSTS=true"


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


async def _public_addresses(url: str) -> tuple[httpx.URL, list[str]]:
    """The URL parsed and the addresses its host resolves to, all public; InputError
    (on `url`) naming the private ones otherwise, or a host that does not resolve."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InputError(f"webhook URL {url!r} is not a URL ({exc})", field="url") from None
    host = parsed.host
    if not host:
        raise InputError(f"webhook URL {url!r} names no host", field="url")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"webhook URL {url!r}: its host cannot be resolved ({exc})", field="url"
        ) from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    private = sorted(a for a in addresses if _private(a))
    if private:
        raise InputError(
            f"webhook URL {url!r} resolves to a private or reserved address "
            f"({', '.join(private)}); only public receivers can be used with a virtual "
            f"key (the deployment may allow private ones with {_ALLOWING})",
            field="url",
        )
    return parsed, addresses


async def check_public(url: str) -> None:
    """Refuse `url` (InputError on `url`) when its host is, or resolves to, an address
    that is not public."""
    await _public_addresses(url)


async def pin_public(url: str) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
    """Where to send a delivery to `url` so that it reaches a public address, the one
    checked: the URL with that address as its host, the `Host` header naming the
    original host, and the request extensions (over TLS, the original host as the server
    name). InputError when the host resolves to a private address now."""
    parsed, addresses = await _public_addresses(url)
    host = parsed.host
    extensions: dict[str, Any] = {}
    if parsed.scheme == "https":
        extensions["sni_hostname"] = host
    pinned = parsed.copy_with(host=addresses[0])
    return pinned, {"Host": parsed.netloc.decode("ascii")}, extensions
