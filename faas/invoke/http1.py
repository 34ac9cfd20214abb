"""HTTP/1.1 request heads and response heads, for the two hand-written servers on the warm path.

The gateway worker's Invoke fast path (gateway/worker.py) and the Runtime API server
(faas/invoke/runtime_api.py) each read a request head and write a response head on every
warm call, which is why neither uses a general-purpose server. They share this one parser
and this one renderer so that both follow the same rules (RFC 9112) and name each status
with the same phrase; what each does with a head it does not like stays its own decision:
the gateway hands it to gunicorn's parser, the Runtime API answers 400.
"""

from __future__ import annotations

import re
from http import HTTPStatus

__all__ = ["BadHead", "Head", "content_length", "parse_head", "render_head", "REASONS"]

REASONS: dict[int, str] = {s.value: s.phrase for s in HTTPStatus}
# gunicorn's rules (gunicorn/http/message.py), so that the fast path and gunicorn agree on where
# every request ends: a token for a method or a header name (RFC 9110 5.6.2), printable ASCII for
# the target (RFC 9112 3.2), and no control byte but HTAB anywhere, lines ending in CRLF only.
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_NAME = re.compile(_TOKEN)
_REQUEST_LINE = re.compile(rf"{_TOKEN} [\x21-\x7e]+ HTTP/\d\.\d")
# Every byte but the controls (HTAB aside); CR and LF are then counted against the CRLFs.
_NOT_CONTROL = bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100)) + b"\t\r\n"
# More digits than any body this code accepts: a longer Content-Length is "too large", not parsed.
_MAX_LENGTH_DIGITS = 18
_NOT_REPEATED: frozenset[str] = frozenset()


class BadHead(ValueError):
    """A request head that is not well-formed HTTP/1.1 (or one outside the caller's limits)."""


class Head:
    """A parsed request head. Header names are lower-case; a repeated header's values are
    joined with ", " (RFC 9110 5.3) and its name is in `repeated`."""

    __slots__ = ("method", "target", "version", "headers", "repeated")

    def __init__(self, method: str, target: str, version: str, headers: dict[str, str], repeated: frozenset[str]) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.repeated = repeated

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    def __repr__(self) -> str:
        return f"Head({self.method} {self.target} {self.version}, {self.headers})"


def parse_head(
    head: bytes, *, max_line: int | None = None, max_fields: int | None = None, max_field_size: int | None = None
) -> Head:
    """Parse a request head: the bytes before its blank line, lines ending in CRLF.

    Raises BadHead for what gunicorn's parser refuses: a request line other than
    "TOKEN TARGET HTTP/d.d" with single spaces, a header name that is not a token (whitespace
    around it, an obsolete line folding), a bare CR or LF or any control byte but HTAB, and
    (when the max_* limits are given) a request line, header count or header line over them.
    One decode, one scan and one split: this runs twice per warm call.
    """
    text = head.decode("latin-1")
    lines = text.split("\r\n")
    if head.translate(None, _NOT_CONTROL) or not text.count("\r") == text.count("\n") == len(lines) - 1:
        raise BadHead("bare CR or LF, or a control byte")
    request_line = lines[0]
    if max_line is not None and len(request_line) > max_line:
        raise BadHead("request line too long")
    if not _REQUEST_LINE.fullmatch(request_line):
        raise BadHead("bad request line")
    parts = request_line.split(" ")
    method, target, version = parts
    if max_fields is not None and len(lines) - 1 > max_fields:
        raise BadHead("too many header fields")
    headers: dict[str, str] = {}
    repeated: set[str] | None = None
    for line in lines[1:]:
        if max_field_size is not None and len(line) > max_field_size:
            raise BadHead("header field too long")
        name, sep, value = line.partition(":")
        if not sep or not name:
            raise BadHead("bad header line")
        key = name.lower()
        value = value.strip(" \t")
        if key in headers:
            repeated = repeated or set()
            repeated.add(key)
            headers[key] = f"{headers[key]}, {value}"
        else:
            headers[key] = value
    # Every name a token: one match over all of them (lower-casing keeps a token a token).
    if headers and not _NAME.fullmatch("".join(headers)):
        raise BadHead("bad header name")
    return Head(method, target, version, headers, frozenset(repeated) if repeated else _NOT_REPEATED)


def content_length(head: Head) -> int:
    """The declared body length: 0 when absent. Raises BadHead for one that is given twice,
    is not a plain decimal number (a sign, spaces, letters), or is empty; one too long to
    be a real size reads as a number bigger than any limit."""
    value = head.headers.get("content-length")
    if value is None:
        return 0
    if "content-length" in head.repeated:
        raise BadHead("Content-Length given more than once")
    if not (value.isascii() and value.isdigit()):
        raise BadHead(f"bad Content-Length: {value[:40]!r}")
    if len(value) > _MAX_LENGTH_DIGITS:
        return int(10**_MAX_LENGTH_DIGITS)
    return int(value)


def render_head(
    status: int,
    headers: list[tuple[str, str]] | tuple[tuple[str, str], ...],
    length: int,
    *,
    connection: str | None = None,
    date: str | None = None,
) -> bytes:
    """A response head (status line, Date if given, Content-Length, the headers, then
    Connection if given), ending with its blank line; the body goes after it."""
    out = f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\n"
    if date is not None:
        out += f"Date: {date}\r\n"
    out += f"Content-Length: {length}\r\n"
    for k, v in headers:
        out += f"{k}: {v}\r\n"
    if connection is not None:
        out += f"Connection: {connection}\r\n"
    return (out + "\r\n").encode("latin-1")
