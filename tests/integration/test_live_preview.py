"""The live preview's source and pages over HTTP: compile once per change, safe headers."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image
from starlette.testclient import TestClient

from kzmail.cli.common import current_workspace
from kzmail.models import Workspace
from kzmail.services import workspace
from kzmail.services.preview import LivePreview
from kzmail.web.preview import preview_app
from tests.helpers.campaigns import edit_campaign
from tests.helpers.images import with_article_image


def test_recompiles_once_per_change_not_per_request(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled: list[Path] = []
    real_prepare = workspace.prepare

    def counting_prepare(ws: Workspace, path: Path) -> workspace.Prepared:
        compiled.append(path)
        return real_prepare(ws, path)

    monkeypatch.setattr(workspace, "prepare", counting_prepare)
    source = LivePreview(current_workspace(), project / "campaigns/kasachstan.yaml")
    assert source.refresh() == 1
    first = source.render(None)
    assert first is not None
    assert len(compiled) == 1
    for _ in range(5):
        assert source.refresh() == 1
        assert source.render(None) is first  # cached render, same compiled campaign
    assert len(compiled) == 1
    subscribers = project / "subscribers.example.csv"
    subscribers.write_text(
        subscribers.read_text(encoding="utf-8").replace("Jürgen Müller", "Jürgen Neu"),
        encoding="utf-8",
    )
    assert source.refresh() == 2
    rendered = source.render(None)
    assert rendered is not None
    assert "Hallo Jürgen Neu" in rendered[1].text
    assert source.refresh() == 2
    assert len(compiled) == 2  # once for the one change


def test_unknown_or_missing_subscriber_falls_back_to_the_first(project: Path) -> None:
    source = LivePreview(current_workspace(), project / "campaigns/kasachstan.yaml", picker_limit=2)
    source.refresh()
    assert len(source.addresses()) == 2
    last = source.render("aigerim.nurpeisova@example.org")  # beyond the picker: still found
    assert last is not None
    assert last[0] == "aigerim.nurpeisova@example.org"
    fallback = source.render("nobody@example.org")
    assert fallback is not None
    assert fallback[0] == source.addresses()[0]


def test_pages_headers_and_error_display(project: Path) -> None:
    source = LivePreview(current_workspace(), project / "campaigns/kasachstan.yaml")
    with TestClient(preview_app(source), base_url="http://127.0.0.1:8026") as client:
        page = client.get("/")
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe" not in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert 'src="frame?to=juergen.mueller%40example.org&amp;v=1"' in page.text
        assert '<label for="to">Subscriber</label>' in page.text
        frame = client.get("/frame", params={"to": "ayse.yilmaz@example.net"})
        assert "Hallo Ayşe Yılmaz" in frame.text
        assert frame.headers["x-frame-options"] == "SAMEORIGIN"
        assert "script-src" not in frame.headers["content-security-policy"]
        assert "frame-ancestors 'self'" in frame.headers["content-security-policy"]
        assert client.get("/version").text == "1"
        assert client.get("/reload.js").headers["content-type"].startswith("text/javascript")
        edit_campaign(
            project / "campaigns/kasachstan.yaml",
            lambda t: t.replace("subject: ", "subject_typo: "),
        )
        broken = client.get("/")
        assert "kasachstan.yaml:11: subject_typo: unknown key; did you mean subject?" in broken.text
        assert "<iframe" not in broken.text
        assert client.get("/frame").status_code == 503
        assert client.get("/version").text == "2"


def test_other_host_names_are_refused(project: Path) -> None:
    # DNS rebinding: evil.example resolving to 127.0.0.1 must not read the preview
    source = LivePreview(current_workspace(), project / "campaigns/kasachstan.yaml")
    with TestClient(preview_app(source), base_url="http://evil.example:8026") as client:
        response = client.get("/")
        assert response.status_code == 400
        assert "Jürgen" not in response.text
    with TestClient(preview_app(source), base_url="http://localhost:8026") as client:
        assert client.get("/").status_code == 200


def test_inline_image_is_served_to_the_frame(project: Path) -> None:
    with_article_image(project / "campaigns/kasachstan.yaml")
    source = LivePreview(current_workspace(), project / "campaigns/kasachstan.yaml")
    with TestClient(preview_app(source), base_url="http://127.0.0.1:8026") as client:
        frame = client.get("/frame")
        assert "cid:" not in frame.text
        assert "img-src 'self'" in frame.headers["content-security-policy"]
        found = re.search(r'src="(image\?id=[^"]+)"', frame.text)
        assert found, frame.text
        image = client.get("/" + found.group(1).replace("&amp;", "&"))
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(image.content)).size == (1200, 800)
        assert b"Exif" not in image.content
        assert client.get("/image", params={"id": "nothing@example.org"}).status_code == 404
