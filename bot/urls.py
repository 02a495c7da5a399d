"""The check every URL the bot sends credentials to gets: a catalog connection's ``base_url`` and
``token_url``, and the ``SLACK_API_URL`` setting.

It must be http(s); a cloud metadata or link-local address is an error (a typo or a hostile edit would hand
the credentials to whatever answers there); plain http off this machine is a warning (clear text). Pure: no
I/O, no name lookups, so ``config`` and ``catalog`` both use it.
"""

from __future__ import annotations

import ipaddress
import re
import socket

import httpx

SHOWN = 80

#: cloud instance metadata endpoints by name: they hand out the machine's credentials
METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal"}
)
#: by address: AWS IPv6 (fd00:ec2::254), Alibaba Cloud (100.100.100.200); 169.254.169.254 is link-local
METADATA_NETWORKS = (ipaddress.ip_network("fd00:ec2::/32"), ipaddress.ip_network("100.100.100.200/32"))


def check_url(
    url: str,
    path: str,
    problems: list[str],
    warnings: list[str],
    *,
    quoted: str | None = None,
    sends: str = "the connection's credentials",
) -> None:
    """Add an error to ``problems`` for a URL that is no http(s) URL or points at a metadata or link-local
    address; a warning to ``warnings`` for plain http to anything but this machine.

    ``quoted``: how a problem line shows the URL (the catalog quotes ``${NAME}`` as written, never the value);
    ``sends``: what goes to the URL, for the message."""
    shown = quoted if quoted is not None else _quote(hide_userinfo(url))
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        problems.append(f"{path}: {shown} is not a URL; write it like https://host/path")
        return
    if parsed.scheme not in ("http", "https") or not parsed.host:
        problems.append(f"{path}: {shown} is not an http(s) URL; write it like https://host/path")
        return
    if parsed.userinfo:
        # never sent (the connection's own credentials are), yet quoted wherever the URL is: a password in plain
        # sight in the catalog, the logs, error messages
        problems.append(
            f"{path}: the URL holds a user name or password before its host (user:…@; not quoted here); the bot "
            "never sends them: remove them and give the credentials in their own fields"
        )
        return
    host = parsed.host.rstrip(".").lower()
    address = _address(host)
    if host in METADATA_HOSTS or (
        address is not None and (address.is_link_local or any(address in n for n in METADATA_NETWORKS))
    ):
        problems.append(
            f"{path}: {parsed.host} is a link-local or cloud metadata address: the bot would send "
            f"{sends} there; use the provider's own host"
        )
        return
    local = host == "localhost" or host.endswith(".localhost") or (address is not None and address.is_loopback)
    if parsed.scheme == "http" and not local:
        warnings.append(
            f"{path}: http://{parsed.host} sends {sends} in clear text; use https:// "
            "(plain http is quiet only for this machine: localhost, 127.0.0.1, ::1)"
        )


def web_link_problem(url: str, *, quoted: str | None = None) -> str | None:
    """Why a URL cannot be a link people click (a Slack button, a mrkdwn link), or None: only http(s)."""
    shown = quoted if quoted is not None else _quote(hide_userinfo(url))
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return f"{shown} is not a URL; write it like https://host/path"
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return f"{shown} is not an http(s) URL; write it like https://host/path"
    if parsed.userinfo:  # the link goes on every card and alert: a password in it is one given to the channel
        return "the URL holds a user name or password before its host (user:…@; not quoted here): remove them"
    return None


def hide_userinfo(url: str) -> str:
    """``url`` without what may be a user and password (all before its last ``@``, after the scheme), for a problem
    line: a URL that is no http(s) URL (``ftp://u:p@host``), has no host or a bad port is quoted there, and
    ``check`` prints it, ``run`` logs it. A path holding ``@`` loses more than it must."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    return url if "@" not in rest else f"{scheme}{sep}…@{rest.rpartition('@')[2]}"


def _quote(url: str) -> str:
    return repr(url if len(url) <= SHOWN else url[: SHOWN - 1] + "…")


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally, in any form the resolver takes (``2852039166``, ``0xa9.0xfe…``)."""
    try:
        address = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        if not re.fullmatch(r"[0-9a-fx.]+", host):
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
