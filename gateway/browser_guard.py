"""Web pages in a browser on this machine must not drive the gateway.

The gateway answers on 127.0.0.1 without a token by default, and a browser will send requests
there on behalf of any page it has open: a cross-site form POST needs no CORS preflight (it can
create or invoke a function through the management or Invoke API), and a page whose own name it
re-points at 127.0.0.1 (DNS rebinding) can even read the answers (`/ui/api/*` holds every
function's environment). AWS needs SigV4 on those APIs, which a page cannot forge; here two
header checks stand in for it:

- Host must name this gateway: an IP address, `localhost` (or `*.localhost`), this machine's
  host name, the address it listens on, or a name in `FAAS_ALLOWED_HOSTS`. A rebinding page's
  requests carry the attacker's name.
- An Origin header (browsers send it on cross-origin requests and on every POST) must be this
  gateway's own origin: the dashboard's own calls pass, another page's do not. boto3, the AWS
  CLI, curl and the faas CLI send no Origin.

Function URLs (`/function/NAME/...`) are exempt: they are the user's own web endpoints, which
pages may call, as Lambda's function URLs with AuthType NONE may be.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from faas.errors import FaasError

EXEMPT_PREFIX = "/function/"
GUARD_KEY = "faas.browser_guard"  # where create_app keeps the app's guard
ALLOWED_HOSTS_VAR = "FAAS_ALLOWED_HOSTS"


class BrowserRefused(FaasError):
    status = 403
    error_type = "AccessDeniedException"
    kind = "User"


def _split_host(host: str) -> str:
    """The name of a Host header's value, without its port and brackets, lower-case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class BrowserGuard:
    """Decides, from a request's path, Host and Origin, whether a web page may be behind it."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = {n.strip().lower().rstrip(".") for n in names if n and n.strip()}

    @classmethod
    def for_gateway(cls, listen_host: str, env: dict[str, str] | None = None) -> BrowserGuard:
        env = dict(os.environ) if env is None else env
        extra = (env.get(ALLOWED_HOSTS_VAR) or "").split(",")
        return cls(["localhost", listen_host, socket.gethostname(), *extra])

    def host_allowed(self, host: str) -> bool:
        name = _split_host(host).rstrip(".")
        return not name or _is_ip(name) or name in self.names or name.endswith(".localhost")

    def check(self, path: str, host: str | None, origin: str | None) -> None:
        """Raise BrowserRefused (403) for a request a web page may have sent."""
        if path.startswith(EXEMPT_PREFIX):
            return
        if host is not None and not self.host_allowed(host):
            shown = host[:100]
            raise BrowserRefused(
                f"Host {shown!r} is not a name of this gateway (a web page that points its own name at this machine "
                f"must not reach it); if it is yours, add it to {ALLOWED_HOSTS_VAR}"
            )
        if origin is None:
            return
        own = (host or "").strip().lower()
        parts = urlsplit(origin.strip().lower())
        if parts.scheme not in ("http", "https") or not own or parts.netloc != own:
            raise BrowserRefused(
                f"requests from the web page at {origin[:100]!r} are refused: only this gateway's own pages "
                "and clients that send no Origin (boto3, the AWS CLI, curl, faas) may call it"
            )
