"""Which requests the server answers at all: those naming it by a known Host, and POSTs sent by its own page or by a
script, never by a web page elsewhere.

A studio on localhost can be reached by every page its user's browser opens, in two ways:
- DNS rebinding: evil.example first resolves to the attacker, then to 127.0.0.1, and the browser lets that page
  read the local server as if it were evil.example. Those requests say Host: evil.example, so only the names the
  server is bound to (plus --allowed-host) are answered; others get 400.
- Cross-site POSTs: a form on any page can send multipart data here without a CORS preflight. Browsers send Origin
  with every POST, so a POST is answered only when its Origin is this server, or when it carries no Origin but an
  X-Requested-With header (scripts, curl): a page elsewhere cannot add that header without a preflight, and this
  server grants none. Others get 403.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

LOOPBACK = ("localhost", "127.0.0.1", "::1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SCRIPT_HEADER = "X-Requested-With"
ANY_HOST = "*"


def host_name(value: str) -> str:
    """A Host header's (or --host's) name, lower case, without the port: '[::1]:7860' -> '::1'."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def allowed_hosts(bind: str, extra: list[str] = ()) -> frozenset[str] | None:
    """The loopback names, the bound address and `extra`; None (any Host) when `extra` holds '*'."""
    if ANY_HOST in extra:
        return None
    return frozenset({*LOOPBACK, host_name(bind), *(host_name(name) for name in extra)})


class RequestGuard:
    """ASGI middleware: 400 for an unknown Host, 403 for a POST (any unsafe method) from another origin."""

    def __init__(self, app, hosts: frozenset[str] | None):
        self.app, self.hosts = app, hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            refusal = self.refusal(scope)
            if refusal is not None:
                return await refusal(scope, receive, send)
        return await self.app(scope, receive, send)

    def refusal(self, scope) -> JSONResponse | None:
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if self.hosts is not None and host_name(host) not in self.hosts:
            names = ", ".join(sorted(self.hosts))
            return JSONResponse({"detail": f"unknown Host {host!r}: this server answers to {names}; start it with "
                                           "--allowed-host NAME to add one"}, 400)
        if scope["method"] in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is None and SCRIPT_HEADER in headers:
            return None
        if origin is not None and urlsplit(origin).netloc.lower() == host.lower():
            return None
        return JSONResponse({"detail": f"cross-site request refused: a {scope['method']} needs an Origin of this "
                                       f"server, or no Origin and an {SCRIPT_HEADER} header"}, 403)
