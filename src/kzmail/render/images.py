"""Turn a local image file into the bytes a message carries inline: once per campaign.

Takes the path of an image the article or the template names and hands on an `InlineImage`:
JPEG or PNG, at most `MAX_WIDTH` pixels wide, with no metadata at all. A phone photo's EXIF
carries where it was taken (GPS), when, and on which device; for organisers who may be in
danger none of that may leave, so every image is decoded and encoded afresh from its pixels
alone, whatever its size. A file that declares more than `MAX_PIXELS` pixels (a decompression
bomb, or a photo far beyond any newsletter's need) is refused before its pixels are decoded.
Nothing is ever fetched from the network: only files on disk are read.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from kzmail.errors import ImageError

# the message is 600 px wide; twice that stays sharp on high-density (2x) displays
MAX_WIDTH = 1200
# 80 megapixels: beyond a phone camera's usual output, far below a bomb's billions, and
# below Pillow's own warning limit, so a file past it gets our message before Pillow's
MAX_PIXELS = 80_000_000
_BOMB = "(a decompression bomb, or far larger than a newsletter needs)"
MAX_FILE_BYTES = 50 * 1024 * 1024
JPEG_QUALITY = 82


@dataclass(frozen=True, slots=True)
class InlineImage:
    """One image as the message carries it: `cid` is its Content-ID (without `<>`)."""

    cid: str
    content_type: str  # image/jpeg or image/png
    filename: str  # neutral (image1.jpg): the original name may say where or when
    data: bytes
    width: int
    height: int


def load_image(path: Path, *, number: int, domain: str, origin: Path, line: int) -> InlineImage:
    """Read, check, shrink and re-encode the image at `path`; errors name `origin` and `line`
    (the article or template that names the image)."""

    def failure(why: str) -> ImageError:
        return ImageError(f"image {path}: {why}", path=origin, line=line)

    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise failure(f"the file has {size} bytes, more than {MAX_FILE_BYTES} allowed")
        raw = path.read_bytes()
    except OSError as exc:
        raise failure(f"cannot read it ({exc.strerror or exc})") from exc
    pixels, kind = _decoded(raw, failure)
    data = _encoded(pixels, kind)
    digest = hashlib.sha256(data).hexdigest()[:20]
    extension = "png" if kind == "PNG" else "jpg"
    return InlineImage(
        cid=f"img{number}.{digest}@{domain}",
        content_type=f"image/{'png' if kind == 'PNG' else 'jpeg'}",
        filename=f"image{number}.{extension}",
        data=data,
        width=pixels.width,
        height=pixels.height,
    )


def _decoded(raw: bytes, failure: Callable[[str], ImageError]) -> tuple[Image.Image, str]:
    """The image's pixels (upright, at most MAX_WIDTH wide, in sRGB) and the format to send."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise failure(
                    f"it declares {width}x{height} pixels, more than {MAX_PIXELS} allowed {_BOMB}"
                )
            image.seek(0)  # an animated GIF or WebP is sent as its first frame
            image.load()
            upright = ImageOps.exif_transpose(image) or image
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise failure(_why(exc)) from exc
    except Image.DecompressionBombWarning as exc:
        raise failure(_why(exc)) from exc
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow's word for a broken file
        raise failure(f"not a readable image ({exc})") from exc
    transparent = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
    pixels = _srgb(upright).convert("RGBA" if transparent else "RGB")
    if pixels.width > MAX_WIDTH:
        height = max(1, round(pixels.height * MAX_WIDTH / pixels.width))
        pixels = pixels.resize((MAX_WIDTH, height), Image.Resampling.LANCZOS)
    # a fresh image from the pixels alone: no EXIF, XMP, ICC, comments or text chunks
    clean = Image.frombytes(pixels.mode, pixels.size, pixels.tobytes())
    return clean, "PNG" if transparent or (image.format in ("PNG", "GIF")) else "JPEG"


def _why(exc: Exception) -> str:
    if isinstance(exc, UnidentifiedImageError):
        return "not an image file (JPEG, PNG, GIF or WebP)"
    return f"it declares more than {MAX_PIXELS} pixels {_BOMB}"


def _srgb(image: Image.Image) -> Image.Image:
    """The image in sRGB if it carries another colour profile (a wide-gamut phone photo),
    so the profile can be dropped without the colours shifting."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(
            image, source, ImageCms.createProfile("sRGB"), outputMode=image.mode
        )
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # an unreadable profile: the pixels as they are
    return converted or image


def _encoded(pixels: Image.Image, kind: str) -> bytes:
    out = io.BytesIO()
    if kind == "PNG":
        pixels.save(out, "PNG", optimize=True)
    else:
        pixels.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return out.getvalue()


__all__ = ["MAX_PIXELS", "MAX_WIDTH", "InlineImage", "load_image"]
