"""Image files for the image tests: a phone photo with GPS, a decompression bomb, and the
example campaign with a photo in its article."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from PIL import Image

# Almaty, Republic Square: what a phone writes into a photo's EXIF
GPS = {1: "N", 2: (43.0, 14.0, 18.0), 3: "E", 4: (76.0, 56.0, 42.0)}
GPS_IFD = 0x8825
CAPTION = "Demonstration in Almaty"


def phone_photo(path: Path, size: tuple[int, int] = (3000, 2000)) -> Path:
    """A JPEG like a phone's: larger than a message needs, with GPS and camera EXIF."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 12"  # Model
    exif[GPS_IFD] = GPS
    image.save(path, "JPEG", exif=exif.tobytes(), quality=90)
    return path


def bomb_png(path: Path, width: int, height: int) -> Path:
    """A PNG that declares `width` x `height` pixels in a few bytes (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    body = zlib.compress(b"\0" * 1024)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )
    return path


def with_article_image(campaign: Path, alt: str = CAPTION) -> Path:
    """Put a phone photo (demo.jpg) after the first paragraph of the campaign's article;
    return the photo's path."""
    article = campaign.parent / "kasachstan.md"
    photo = phone_photo(campaign.parent / "demo.jpg")
    text = article.read_text(encoding="utf-8")
    first, rest = text.split("\n\n", 1)
    article.write_text(f"{first}\n\n![{alt}](demo.jpg)\n\n{rest}", encoding="utf-8")
    return photo
