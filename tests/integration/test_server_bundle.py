"""The public unsubscribe server from a bundle: two state folders, two processes.

The organiser's project (this test's process, through the CLI) sends to a real aiosmtpd,
makes a server bundle, and a `kzmail serve` child runs from the bundle alone; mail
providers' one-click POSTs reach it, `sync` brings them back, the next campaign skips them,
and neither the server's folder nor its output holds any subscriber address in any form.
"""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import httpx
from typer.testing import CliRunner

from kzmail.cli.main import cli
from kzmail.state.secret import load_signer
from kzmail.tokens import unsubscribe_url
from tests.helpers.bundle import bundle_server, free_port, leaks, link_path
from tests.helpers.campaigns import edit_campaign, use_relay
from tests.helpers.smtp import SmtpServer
from tests.helpers.unsubscribe import suppressions

CAMPAIGN = "campaigns/kasachstan.yaml"
LIST = "kasachstan.newsletter.arbeiterinnenmacht.example.org"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}
runner = CliRunner()


def kz(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def addresses(project: Path) -> list[str]:
    lines = (project / "subscribers.example.csv").read_text(encoding="utf-8").splitlines()
    return [line.split(",")[0] for line in lines[1:]]


def followup(project: Path, name: str) -> str:
    path = project / f"campaigns/{name}.yaml"
    path.write_text((project / CAMPAIGN).read_text(encoding="utf-8"), encoding="utf-8")
    edit_campaign(path, lambda t: t.replace("name: kasachstan", f"name: {name}"))
    return str(path.relative_to(project))


def test_unsubscribes_on_the_bundle_server_sync_back_and_the_next_campaign_skips_them(
    project: Path, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    port = free_port()
    server_dir = tmp_path / "vps-state"
    code, out, err = kz(
        "server", "bundle", CAMPAIGN, "--out", str(server_dir),
        "--sync-url", f"http://127.0.0.1:{port}",
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in server_dir.iterdir()) == [
        "Caddyfile", "kzmail-unsubscribe.service", "nginx.conf", "secret.key",
        "secret.retired", "server.json",
    ]  # fmt: skip

    everyone = addresses(project)
    with bundle_server(server_dir, port, tmp_path / "vps") as server:
        code, out, err = kz("send", CAMPAIGN, "--yes")
        assert code == 0, err
        assert "Synced the unsubscribe server: 0 new" in err
        links = {m.rcpt_tos[0]: link_path(m.data) for m in smtp_server.handler.messages}
        assert sorted(links) == sorted(everyone)

        gone = everyone[1:4]
        with httpx.Client(base_url=server.url, timeout=10) as http:
            # Gmail posts urlencoded, others multipart; the page's button is a third way
            assert http.post(links[gone[0]], data=ONE_CLICK).status_code == 200
            assert (
                http.post(
                    links[gone[1]], files={"List-Unsubscribe": (None, "One-Click")}
                ).status_code
                == 200
            )
            assert http.post(links[gone[1]], data=ONE_CLICK).status_code == 200  # again: same
            page = http.get(links[gone[2]])
            assert page.status_code == 200 and gone[2] not in page.text
            assert http.post(links[gone[2]], data=ONE_CLICK | {"via": "page"}).status_code == 200
            # GET never unsubscribes; strangers get 401 and nothing
            assert http.get(links[everyone[5]]).status_code == 200
            assert http.get("/sync/records").status_code == 401
            stranger = {"authorization": "Bearer not-the-credential"}
            assert http.get("/sync/records", headers=stranger).status_code == 401
            assert (
                http.post("/sync/ack", data={"through": "99"}, headers=stranger).status_code == 401
            )
            assert http.post(links[gone[0]], content=b"x" * 5000).status_code == 413

        assert suppressions() == []  # nothing is known here until synced
        code, out, err = kz("sync", "--from", server.url)
        assert code == 0, err
        assert "3 new unsubscribed" in out
        assert {(s[0], s[1]) for s in suppressions()} == {(LIST, a) for a in gone}
        code, out, _ = kz("sync")  # idempotent: the cursor moved on, nothing new
        assert "Synced 0 records" in out and code == 0

        # one more after the sync: the next `send` syncs first and skips her too
        late = everyone[6]
        assert httpx.post(server.url + links[late], data=ONE_CLICK, timeout=10).status_code == 200
        # and a link from a message sent before opaque tokens still unsubscribes
        veteran = everyone[7]
        old = unsubscribe_url("", load_signer(project / ".kzmail").make_v1(LIST, veteran))
        assert (
            "." in old
            and veteran.split("@")[0]
            in base64.urlsafe_b64decode(old.split("/")[-1].split(".")[0] + "==").decode()
        )
        assert httpx.post(server.url + old, data=ONE_CLICK, timeout=10).status_code == 200
        smtp_server.handler.messages.clear()
        code, out, err = kz("send", followup(project, "followup"), "--yes")
        assert code == 0, err
        assert "2 new unsubscribed" in err
        again = {r for m in smtp_server.handler.messages for r in m.rcpt_tos}
        assert again == set(everyone) - set(gone) - {late, veteran}

        code, out, _ = kz("sync", "--ack")
        assert code == 0 and "The server forgot 6" in out  # the repeated POST too
        with sqlite3.connect(server_dir / "records.db") as db:
            assert db.execute("SELECT count(*) FROM records").fetchone() == (0,)

    # the server is down: send refuses to start; --no-sync says so explicitly
    smtp_server.handler.messages.clear()
    third = followup(project, "third")
    code, _, err = kz("send", third, "--yes")
    assert code != 0
    assert "cannot reach the unsubscribe server" in err and "--no-sync" in err
    assert smtp_server.handler.messages == []
    code, _, err = kz("check", third)
    assert "warning: not synced" in err
    code, _, err = kz("send", third, "--yes", "--no-sync")
    assert code == 0, err
    assert len(smtp_server.handler.messages) == len(everyone) - 5

    # nothing of any subscriber on the server: its folder (records.db too) and its output
    assert (server_dir / "records.db").exists()
    assert leaks([server_dir, server.log], everyone) == []
    # the check itself finds an address where one is
    (tmp_path / "probe").write_text("x" + everyone[0].upper().lower())
    assert leaks([tmp_path / "probe"], everyone) == [(str(tmp_path / "probe"), everyone[0])]


def test_a_campaign_with_only_an_unsubscribe_url_never_goes_online(
    project: Path, smtp_server: SmtpServer
) -> None:
    use_relay(project / CAMPAIGN, smtp_server)
    code, _, err = kz("send", CAMPAIGN, "--yes")
    assert code == 0, err
    assert "Synced" not in err
    code, _, err = kz("sync")
    assert code == 1 and "No server bundle" in err
