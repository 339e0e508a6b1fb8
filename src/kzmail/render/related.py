"""The MIME pieces that carry a campaign's inline images, and what their size means.

Takes the images `render.embed` found and hands on, once per campaign, the fixed byte pieces
that turn the message's HTML branch into the standard structure

    multipart/alternative
    ├── text/plain
    └── multipart/related; type="text/html"
        ├── text/html           refers to each image by cid:
        └── image/jpeg | image/png, one per image, with its Content-ID

so the per-subscriber assembly only joins them around the personalised parts, as it does
without images. Base64 lines never start with ".", so the bytes stay wire-safe.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the message stage needs no Pillow
    from kzmail.render.images import InlineImage

# Gmail shows "[Message clipped]" and hides the rest (the unsubscribe link among it)
# once a message's HTML passes about 102 KB
GMAIL_CLIP_BYTES = 102 * 1024
# beyond this a message is slow or costly on a phone's data plan, and some relays refuse it
LARGE_MESSAGE_BYTES = 1024 * 1024


def related_pieces(outer: str, images: Sequence[InlineImage]) -> tuple[bytes, bytes]:
    """The pieces that replace the plain HTML branch's head and the message's tail: what
    comes between the text and the HTML part, and what follows the HTML part."""
    inner = "=_kzr_" + secrets.token_hex(12)  # not a prefix of the outer boundary
    middle = (
        f"\r\n--{outer}\r\n"
        f'Content-Type: multipart/related; boundary="{inner}"; type="text/html"\r\n\r\n'
        f"--{inner}\r\n"
        'Content-Type: text/html; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode()
    parts = [_image_part(inner, image) for image in images]
    tail = b"".join(parts) + f"\r\n--{inner}--\r\n\r\n--{outer}--\r\n".encode()
    return middle, tail


def _image_part(boundary: str, image: InlineImage) -> bytes:
    body = base64.encodebytes(image.data).replace(b"\n", b"\r\n").rstrip(b"\r\n")
    head = (
        f"\r\n--{boundary}\r\n"
        f'Content-Type: {image.content_type}; name="{image.filename}"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        f"Content-ID: <{image.cid}>\r\n"
        f'Content-Disposition: inline; filename="{image.filename}"\r\n\r\n'
    ).encode()
    return head + body


def size_warnings(html_bytes: int, message_bytes: int, images: Sequence[InlineImage]) -> list[str]:
    """`check`'s warnings about one built message's size, naming the sizes."""
    found = []
    if html_bytes > GMAIL_CLIP_BYTES:
        found.append(
            f"the HTML part has {_kb(html_bytes)}, more than Gmail's {_kb(GMAIL_CLIP_BYTES)}: "
            "Gmail clips the message and hides its end, the unsubscribe link with it; "
            "shorten the article or the template"
        )
    if message_bytes > LARGE_MESSAGE_BYTES:
        carried = sum(len(image.data) for image in images) * 4 // 3
        share = f", {_kb(carried)} of it {len(images)} image(s)" if images else ""
        found.append(
            f"each message has {_kb(message_bytes)}{share}, more than {_kb(LARGE_MESSAGE_BYTES)}:"
            " slow and costly on a phone, and some relays refuse large messages; "
            "use fewer or smaller images"
        )
    return found


def _kb(size: int) -> str:
    return f"{size / 1024:.0f} KB" if size < 10 * 1024 * 1024 else f"{size / 1048576:.1f} MB"


__all__ = ["GMAIL_CLIP_BYTES", "LARGE_MESSAGE_BYTES", "related_pieces", "size_warnings"]
