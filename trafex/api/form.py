"""One field of an HTML form's body, as ``curl --form`` (multipart) or ``curl --data``
(urlencoded) sends it. Pure: bytes in, the field's text out, or a :class:`FormError`
saying what is wrong with the body (the HTTP status that fits rides along).
"""

from __future__ import annotations

import email.errors
import email.policy
from email.message import EmailMessage
from email.parser import BytesParser
from urllib.parse import parse_qs

from trafex.model.errors import TrafexError

URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
MAX_FIELDS = 64  # a form with more fields than this is not one of ours


class FormError(TrafexError):
    """The body is not a form with exactly one such field (``status``: 400 or 415)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def form_field(content_type: str | None, body: bytes, name: str) -> str:
    """The text of the one field ``name`` of a form body. A missing Content-Type is read
    as urlencoded (Python's ``HTTPConnection.request`` sends none, as the talk's sensor
    does); any other type than the two a form has is refused with status 415."""
    mime = (content_type or URLENCODED).split(";", 1)[0].strip().lower()
    if mime == URLENCODED:
        values = _urlencoded(body, name)
    elif mime == MULTIPART:
        assert content_type is not None  # the default is urlencoded
        values = _multipart(content_type, body, name)
    else:
        raise FormError(f"Content-Type {mime!r}: send {MULTIPART} or {URLENCODED}", 415)
    if not values:
        raise FormError(f"the form has no {name!r} field")
    if len(values) > 1:
        raise FormError(f"one {name!r} field per request, not {len(values)}")
    return values[0]


def _urlencoded(body: bytes, name: str) -> list[str]:
    try:
        text = body.decode("utf-8")
        fields = parse_qs(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise FormError("the form is not UTF-8") from None
    except ValueError as error:  # more than MAX_FIELDS fields
        raise FormError(f"not a form: {error}") from None
    return fields.get(name, [])


def _multipart(content_type: str, body: bytes, name: str) -> list[str]:
    """The values of ``name`` in a multipart/form-data body (RFC 7578), read by the
    standard library's MIME parser."""
    if "\r" in content_type or "\n" in content_type:
        raise FormError("bad Content-Type")
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    try:
        message = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        parts = message.get_payload()
        if not isinstance(parts, list) or message.defects:
            raise FormError("not a multipart/form-data body (check its boundary)")
        if len(parts) > MAX_FIELDS:
            raise FormError(f"more than {MAX_FIELDS} fields")
        fields = [part for part in parts if isinstance(part, EmailMessage)]
        return [_text(part) for part in fields if _name(part) == name]
    except (email.errors.MessageError, ValueError, LookupError) as error:
        raise FormError(f"not a multipart/form-data body: {error}") from None


def _name(part: EmailMessage) -> str | None:
    disposition = part.get("content-disposition")
    if disposition is None or part.get_content_disposition() != "form-data":
        return None
    value = getattr(disposition, "params", {}).get("name")
    return value if isinstance(value, str) else None


def _text(part: EmailMessage) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raise FormError("a form field holds text, not parts")
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset)
    except (UnicodeDecodeError, LookupError):
        raise FormError(f"the field is not {charset} text") from None
