"""The unsubscribe service over HTTP: one-click POST, GET never unsubscribes, bad tokens."""

from __future__ import annotations

import re
import socket
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from kzmail.cli.common import current_workspace
from kzmail.services import unsubscribe as service_unsubscribe
from kzmail.state.journal import Journal
from kzmail.state.secret import rotate_secret
from tests.helpers.campaigns import edit_campaign
from tests.helpers.unsubscribe import ADDRESS, LIST, path_for, suppressions
from tests.helpers.web import running

OTHER = "other.newsletter.example.org"


@pytest.fixture
def two_lists(project: Path) -> Path:
    """The example campaign (German) plus an English one for another list."""
    source = project / "campaigns/kasachstan.yaml"
    other = project / "campaigns/other.yaml"
    other.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    edit_campaign(
        other,
        lambda t: (
            t.replace("name: kasachstan", "name: other")
            .replace(f"list_id: {LIST}", f"list_id: {OTHER}")
            .replace("language: de", "language: en")
            .replace(
                'list_name: "Newsletter der Gruppe ArbeiterInnenmacht"',
                'list_name: "Other <b>list</b>"',
            )
        ),
    )
    return project


@pytest.fixture
def client(two_lists: Path) -> Iterator[TestClient]:
    application, _ = service_unsubscribe.build_app(current_workspace(), [])
    with TestClient(application, base_url="https://news.example.org") as test_client:
        yield test_client


def test_get_shows_masked_address_and_list_in_german_and_never_unsubscribes(
    client: TestClient,
) -> None:
    for _ in range(3):
        response = client.get(path_for())
        assert response.status_code == 200
    html = response.text
    assert '<html lang="de">' in html
    assert "<strong>a…@example.net</strong>" in html  # a hint, not the address
    assert "ayse" not in html
    assert "Newsletter der Gruppe ArbeiterInnenmacht" in html
    assert re.search(r'<form method="post">.*<button type="submit">Jetzt abmelden</button>', html)
    assert client.head(path_for()).status_code == 200
    assert len(response.content) < 4096  # a small page: no framework, no assets
    assert suppressions() == []


def test_page_of_another_list_is_in_its_language_and_escapes_its_name(client: TestClient) -> None:
    html = client.get(path_for(OTHER)).text
    assert '<html lang="en">' in html
    assert "Unsubscribe now" in html
    assert "Other &lt;b&gt;list&lt;/b&gt;" in html


def test_one_click_post_urlencoded_unsubscribes_at_once(client: TestClient) -> None:
    response = client.post(
        path_for(),
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert "Abgemeldet" in response.text
    assert "set-cookie" not in response.headers
    rows = suppressions()
    assert [(r[0], r[1], r[2]) for r in rows] == [(LIST, ADDRESS, "unsubscribe: one-click")]
    assert abs(rows[0][3] - time.time()) < 60
    journal = Journal(current_workspace().state)
    assert journal.is_suppressed(LIST, ADDRESS)
    assert not journal.is_suppressed(OTHER, ADDRESS)
    journal.close()


def test_one_click_post_multipart(client: TestClient) -> None:
    response = client.post(path_for(), files={"List-Unsubscribe": (None, "One-Click")})
    assert response.request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert response.status_code == 200
    assert [(r[0], r[1]) for r in suppressions()] == [(LIST, ADDRESS)]


def test_page_button_body_is_recorded_as_web_page(client: TestClient) -> None:
    response = client.post(path_for(), data={"List-Unsubscribe": "One-Click", "via": "page"})
    assert response.status_code == 200
    assert suppressions()[0][2] == "unsubscribe: web page"


def test_replay_is_idempotent(client: TestClient) -> None:
    body = {"List-Unsubscribe": "One-Click"}
    first = client.post(path_for(), data=body)
    stamp = suppressions()[0][3]
    second = client.post(path_for(), data=body)
    third = client.post(path_for(), files={"List-Unsubscribe": (None, "One-Click")})
    assert first.status_code == second.status_code == third.status_code == 200
    assert first.text == second.text == third.text
    assert len(suppressions()) == 1
    assert suppressions()[0][3] == stamp


def test_token_for_another_list_unsubscribes_only_from_that_list(client: TestClient) -> None:
    response = client.post(path_for(OTHER), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    journal = Journal(current_workspace().state)
    try:
        assert journal.is_suppressed(OTHER, ADDRESS)
        assert not journal.is_suppressed(LIST, ADDRESS)
    finally:
        journal.close()


def test_forged_and_swapped_tokens_are_refused_and_record_nothing(client: TestClient) -> None:
    opaque = path_for().removeprefix("/u/")
    genuine = path_for(old=True).removeprefix("/u/")
    body, tag = genuine.split(".")
    other_body = path_for(OTHER, old=True).removeprefix("/u/").split(".")[0]
    forged = [
        opaque[:-5] + ("A" if opaque[-5] != "A" else "B") + opaque[-4:],
        genuine[:-5] + ("A" if genuine[-5] != "A" else "B") + genuine[-4:],  # one character
        f"{other_body}.{tag}",  # list swapped, old tag
        f"{body}.{'A' * len(tag)}",  # made-up tag
    ]
    pages = set()
    for token in forged:
        for method in ("GET", "POST"):
            response = client.request(
                method,
                f"/u/{token}",
                data={"List-Unsubscribe": "One-Click"} if method == "POST" else None,
            )
            assert response.status_code == 403
            assert ADDRESS not in response.text
            assert "ayse" not in response.text
            pages.add(response.text)
    assert len(pages) == 1  # the same plain page, whatever was wrong
    assert suppressions() == []


def test_valid_token_for_a_list_not_served_is_a_bad_request(client: TestClient) -> None:
    response = client.post(path_for("unknown.example.org"), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400
    assert "unknown.example.org" not in response.text
    assert ADDRESS not in response.text
    malformed = client.get("/u/not-a-token")
    assert malformed.status_code == 400
    assert malformed.text.replace("400", "") == response.text.replace("400", "")
    assert suppressions() == []


def test_expired_token_after_rotation_is_refused(client: TestClient, two_lists: Path) -> None:
    old_path = path_for()
    rotate_secret(current_workspace().state, grace_seconds=0)
    application, _ = service_unsubscribe.build_app(current_workspace(), [])
    with TestClient(application) as fresh:
        assert fresh.post(old_path, data={"List-Unsubscribe": "One-Click"}).status_code == 403
        assert fresh.post(path_for(), data={"List-Unsubscribe": "One-Click"}).status_code == 200


def test_rotation_with_grace_keeps_old_links_working(two_lists: Path) -> None:
    old_path = path_for()
    rotate_secret(current_workspace().state, grace_seconds=3600)
    application, _ = service_unsubscribe.build_app(current_workspace(), [])
    with TestClient(application) as fresh:
        assert fresh.post(old_path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert len(suppressions()) == 1


def test_rotation_while_serving_needs_no_restart(client: TestClient) -> None:
    old_path = path_for()
    assert client.get(old_path).status_code == 200
    rotate_secret(current_workspace().state, grace_seconds=3600)
    new_path = path_for("kasachstan.newsletter.arbeiterinnenmacht.example.org", "new@example.org")
    assert client.get(new_path).status_code == 200  # signed with the new secret
    assert client.get(old_path).status_code == 200  # still within its grace period
    (current_workspace().state / "secret.retired").write_text("# none\n", encoding="ascii")
    assert client.get(old_path).status_code == 403  # the retired file is read again
    rotate_secret(current_workspace().state, grace_seconds=0)  # e.g. the second secret leaked
    assert client.get(new_path).status_code == 403  # stopped at once


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b""),
        ("application/x-www-form-urlencoded", b"List-Unsubscribe=Nope"),
        ("application/x-www-form-urlencoded", b"%%%&&&==="),
        ("application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click&\xff\xfe=1"),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\ngarbage without headers"),
        ("multipart/form-data", b"List-Unsubscribe=One-Click"),
        ("application/json", b'{"List-Unsubscribe": "One-Click"}'),
        ("", b"List-Unsubscribe=One-Click"),
    ],
)
def test_malformed_bodies_are_refused_without_recording(
    client: TestClient, content_type: str, body: bytes
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post(path_for(), content=body, headers=headers)
    assert response.status_code == 400
    assert suppressions() == []


def test_oversized_body_is_refused(client: TestClient) -> None:
    body = b"List-Unsubscribe=One-Click&pad=" + b"x" * 100_000
    response = client.post(
        path_for(), content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 413
    assert suppressions() == []


def test_other_methods_and_paths_get_plain_pages(client: TestClient) -> None:
    for method in ("PUT", "DELETE", "PATCH"):
        response = client.request(method, path_for())
        assert response.status_code == 405
        assert "GET" in response.headers["allow"]
    response = client.get("/u/")
    assert response.status_code == 404
    assert "<h1>Nicht gefunden</h1>" in response.text
    assert suppressions() == []


def test_security_headers_on_every_page(client: TestClient) -> None:
    for response in (
        client.get(path_for()),
        client.get("/u/bad"),
        client.get("/nope"),
        client.post(path_for(), data={"List-Unsubscribe": "One-Click"}),
        client.get("/healthz"),
    ):
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "form-action 'self'" in csp
        assert "script-src" not in csp
        assert "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
    html = client.get(path_for()).text
    assert "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # no third-party assets


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.text == "ok\n"


def _bad_request(http: httpx.Client, good: str, i: int) -> int:
    genuine = good.removeprefix("/u/")
    form = {"content-type": "application/x-www-form-urlencoded"}
    kind = i % 6
    if kind == 0:
        response = http.get(f"/u/{genuine[:-8]}x{i % 10}yzABCD")
    elif kind == 1:
        response = http.post(f"/u/garbage{i}", content=b"List-Unsubscribe=One-Click", headers=form)
    elif kind == 2:
        response = http.post(good, content=b"\x00" * 5000, headers=form)
    elif kind == 3:
        response = http.post(
            good,
            content=b"--b\r\n\r\n",
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
    elif kind == 4:
        response = http.request("DELETE", f"/u/{'A' * 2000}.{'B' * 22}")
    else:
        response = http.post(good, content=b"List-Unsubscribe=Two-Clicks", headers=form)
    return response.status_code


def test_flood_of_bad_requests_then_a_good_one_on_a_real_server(two_lists: Path) -> None:
    application, _ = service_unsubscribe.build_app(current_workspace(), [])
    good = path_for()
    with running(application) as base:

        def worker(start: int) -> list[int]:
            with httpx.Client(base_url=base, timeout=10) as http:
                return [_bad_request(http, good, i) for i in range(start, 1000, 8)]

        with ThreadPoolExecutor(8) as pool:  # 8 clients at once, 1,000 requests
            statuses = [s for batch in pool.map(worker, range(8)) for s in batch]
        assert len(statuses) == 1000
        assert set(statuses) <= {400, 403, 405, 413}, Counter(statuses)
        assert suppressions() == []
        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.get("/healthz").text == "ok\n"
            response = http.post(
                good,
                content=b"List-Unsubscribe=One-Click",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert response.status_code == 200
    assert [(r[0], r[1]) for r in suppressions()] == [(LIST, ADDRESS)]


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)  # no more from us: the server sees EOF
        except OSError:  # the server hung up first: also a refusal
            pass
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
        return b"".join(chunks)


def test_malformed_http_is_refused_and_the_server_stays_up(two_lists: Path) -> None:
    application, _ = service_unsubscribe.build_app(current_workspace(), [])
    with running(application) as base:
        port = int(base.rsplit(":", 1)[1])
        assert _raw(port, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400")
        big = _raw(
            port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n"
        )
        assert big.startswith(b"HTTP/1.1 4") or big == b"", big[:40]  # refused or cut off
        # a body cut short, then the client goes away: nothing recorded, nothing crashed
        _raw(
            port,
            b"POST " + path_for().encode() + b" HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 26\r\n\r\n"
            b"List-Unsub",
        )
        assert suppressions() == []
        assert _raw(
            port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ).endswith(b"ok\n")
