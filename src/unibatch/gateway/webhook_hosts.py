"""Which webhook URLs a virtual key may register.

The worker POSTs to a registered URL from inside the deployment, so a key holder who
could name any address could make it call services that are not meant to be reachable
from outside (a cloud metadata endpoint, an admin port on loopback). A virtual key's URL
must therefore name, and resolve to, public addresses only, unless the deployment allows
private ones (`UNIBATCH_WEBHOOK_PRIVATE_HOSTS=true`, for receivers on its own network).
The master key is the operator and may register any URL.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from unibatch.errors import InputError


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


async def check_public(url: str) -> None:
    """Refuse `url` (InputError on `url`) when its host is, or resolves to, an address
    that is not public."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise InputError(f"webhook URL {url!r} names no host", field="url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:
        raise InputError(
            f"webhook URL {url!r}: its host cannot be resolved ({exc})", field="url"
        ) from None
    private = sorted({str(info[4][0]) for info in found if _private(str(info[4][0]))})
    if private:
        raise InputError(
            f"webhook URL {url!r} resolves to a private or reserved address "
            f"({', '.join(private)}); only public receivers can be registered with a "
            "virtual key (the deployment may allow private ones with "
            "UNIBATCH_WEBHOOK_PRIVATE_HOSTS=true)",
            field="url",
        )
