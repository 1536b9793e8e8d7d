"""Where an inverter may send facts (and a key): the server's configured endpoints, or a public URL
a request brings its own key for.

A request never makes a worker send the server's ``OPENAI_API_KEY`` (or any server key) to a URL
it chose: server keys only go to endpoints in ``MEOW_INVERTER_ENDPOINTS``, picked by name. A
request that brings its own key may name another URL, but not one resolving to a private,
loopback, link-local or otherwise non-public address (the API's and workers' own networks) unless
that URL is configured. The API checks this (422) and the worker checks again before the first
call, because a DNS answer may change in between.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from service.settings import InverterEndpoint, Settings

#: the environment variable a worker puts a request's own key in, for the one job it runs
JOB_KEY_ENV = "MEOW_JOB_INVERTER_API_KEY"
#: api_key_env for jobs without any key: a name that is never set, so no server key is ever sent
NO_KEY_ENV = "MEOW_NO_INVERTER_KEY"


def _norm(url: str) -> str:
    return url.strip().rstrip("/")


def configured_name(settings: Settings, base_url: str) -> str | None:
    """The configured endpoint whose URL is ``base_url``, if any."""
    return next((name for name, ep in settings.inverter_endpoints.items() if _norm(ep.base_url) == _norm(base_url)),
                None)


def endpoint(settings: Settings, name: str) -> InverterEndpoint | None:
    return settings.inverter_endpoints.get(name)


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
                or ip.is_unspecified or not ip.is_global)


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def resolve_target(url: str) -> tuple[str, set[Address]] | str:
    """(host, the addresses it resolves to) of an outgoing http(s) URL, or why it cannot be used.

    Shared by every place a request names a URL the server would call (inverter endpoints with a
    caller's own key, webhook receivers), so they refuse the same things the same way.
    """
    try:  # urlsplit and .port raise on a broken IPv6 host or a port out of range (a 422, not a 500)
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as e:
        return f"is not a valid URL ({e})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    host = parts.hostname
    try:
        return host, {ipaddress.ip_address(host)}
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return f"host {host!r} does not resolve"
    return host, {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}


def target_problem(base_url: str, settings: Settings) -> str | None:
    """Why ``base_url`` may not be used with a caller's own key (None: it may)."""
    if configured_name(settings, base_url) is not None:
        return None
    resolved = resolve_target(base_url)
    if isinstance(resolved, str):
        return resolved
    host, addresses = resolved
    bad = sorted(str(a) for a in addresses if not is_public(a))
    if bad:
        return (f"host {host!r} is a private, loopback or link-local address ({', '.join(bad)}); such targets "
                "must be configured on the server (MEOW_INVERTER_ENDPOINTS)")
    return None
