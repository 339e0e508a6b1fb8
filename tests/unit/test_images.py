"""Local images shrunk and stripped once per campaign: no EXIF/GPS leaves, bombs are refused,
a missing or non-image file is one line naming it, alt text is required."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from kzmail.errors import ImageError
from kzmail.render.embed import Embedder
from kzmail.render.images import MAX_PIXELS, MAX_WIDTH, load_image
from tests.helpers.images import GPS, GPS_IFD, bomb_png, phone_photo


def _load(path: Path, origin: Path | None = None) -> object:
    return load_image(
        path, number=1, domain="example.org", origin=origin or path.parent / "a.md", line=3
    )


def test_phone_photo_is_shrunk_and_loses_its_gps(tmp_path: Path) -> None:
    photo = phone_photo(tmp_path / "demo.jpg")
    assert Image.open(photo).getexif().get_ifd(GPS_IFD) == GPS  # the input does carry it
    image = load_image(photo, number=1, domain="example.org", origin=tmp_path / "a.md", line=1)
    assert (image.width, image.height) == (MAX_WIDTH, 800)
    assert image.content_type == "image/jpeg"
    sent = Image.open(io.BytesIO(image.data))
    assert sent.size == (MAX_WIDTH, 800)
    assert dict(sent.getexif()) == {}
    assert sent.getexif().get_ifd(GPS_IFD) == {}
    assert b"Exif" not in image.data and b"PhoneMaker" not in image.data
    assert "exif" not in sent.info and "icc_profile" not in sent.info


def test_small_photo_keeps_its_size_but_not_its_metadata(tmp_path: Path) -> None:
    photo = phone_photo(tmp_path / "small.jpg", size=(400, 300))
    image = load_image(photo, number=2, domain="example.org", origin=tmp_path / "a.md", line=1)
    assert (image.width, image.height) == (400, 300)
    assert b"Exif" not in image.data and b"PhoneMaker" not in image.data
    assert image.filename == "image2.jpg"  # not the original name, which may say where/when


def test_exif_orientation_is_applied_before_it_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.new("RGB", (400, 200), "red").save(path, exif=exif.tobytes())
    image = load_image(path, number=1, domain="example.org", origin=tmp_path / "a.md", line=1)
    assert (image.width, image.height) == (200, 400)


def test_transparent_png_stays_png(tmp_path: Path) -> None:
    path = tmp_path / "logo.png"
    Image.new("RGBA", (2000, 500), (255, 0, 0, 0)).save(path)
    image = load_image(path, number=1, domain="example.org", origin=tmp_path / "a.md", line=1)
    assert image.content_type == "image/png"
    assert Image.open(io.BytesIO(image.data)).mode == "RGBA"
    assert (image.width, image.height) == (MAX_WIDTH, 300)


@pytest.mark.parametrize("size", [(100_000, 100_000), (MAX_PIXELS // 1000 + 1, 1000)])
def test_decompression_bomb_is_refused_before_decoding(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    bomb = bomb_png(tmp_path / "bomb.png", *size)
    with pytest.raises(ImageError) as caught:
        load_image(bomb, number=1, domain="example.org", origin=tmp_path / "a.md", line=7)
    message = str(caught.value)
    assert "\n" not in message
    assert f"{tmp_path / 'a.md'}:7:" in message and str(bomb) in message
    assert f"more than {MAX_PIXELS}" in message and "decompression bomb" in message


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("missing.jpg", None, "cannot read it"),
        ("notes.jpg", b"this is text, not a photo\n", "not an image file"),
        ("cut.jpg", b"", "not an image file"),
    ],
)
def test_missing_or_non_image_file_is_one_line_naming_it(
    tmp_path: Path, name: str, content: bytes | None, why: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError) as caught:
        load_image(path, number=1, domain="example.org", origin=tmp_path / "a.md", line=2)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and why in message


def test_article_image_becomes_cid_and_needs_alt_text(tmp_path: Path) -> None:
    phone_photo(tmp_path / "demo.jpg", size=(800, 600))
    embedder = Embedder("example.org")
    html = embedder.article("Text.\n\n![Demo in Almaty](demo.jpg)\n", tmp_path / "a.md")
    (image,) = embedder.images
    assert f'src="cid:{image.cid}"' in html and 'alt="Demo in Almaty"' in html
    with pytest.raises(ImageError) as caught:
        Embedder("example.org").article("One\ntwo ![](demo.jpg)\n", tmp_path / "a.md")
    assert str(caught.value).startswith(f"{tmp_path / 'a.md'}:2: ")
    assert "alt text" in str(caught.value)


def test_template_image_becomes_cid_remote_and_jinja_stay(tmp_path: Path) -> None:
    phone_photo(tmp_path / "logo.jpg", size=(300, 100))
    source = (
        '<mj-image src="logo.jpg" alt="Logo" />\n'
        '<mj-image src="https://x.example/a.png" alt="A" />\n'
        "<mj-image src=\"{{ subscriber.photo }}\" alt='B' />\n"
        '<mj-image alt="again" src="logo.jpg"></mj-image>\n'
    )
    embedder = Embedder("example.org")
    out = embedder.template(source, tmp_path / "t.mjml")
    (image,) = embedder.images  # named twice, processed and sent once
    assert out.count(f'src="cid:{image.cid}"') == 2
    assert "https://x.example/a.png" in out and "{{ subscriber.photo }}" in out
    with pytest.raises(ImageError) as caught:
        Embedder("example.org").template('\n\n<mj-image src="logo.jpg" />', tmp_path / "t.mjml")
    assert str(caught.value).startswith(f"{tmp_path / 't.mjml'}:3: ")


def test_article_cannot_reach_outside_its_folder(tmp_path: Path) -> None:
    phone_photo(tmp_path / "private.jpg", size=(200, 100))
    (tmp_path / "campaigns").mkdir()
    article = tmp_path / "campaigns/a.md"
    for src in ("../private.jpg", str(tmp_path / "private.jpg")):
        with pytest.raises(ImageError) as caught:
            Embedder("example.org").article(f"![Photo]({src})\n", article)
        assert "outside the article's folder" in str(caught.value)
    out = Embedder("example.org").template('<mj-image src="../private.jpg" alt="P" />', article)
    assert "cid:img1." in out  # the organiser's template may
