"""`kzmail server bundle`: what the bundle holds, and that systemd accepts its unit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from kzmail.cli.main import cli
from tests.helpers.bundle import leaks

CAMPAIGN = "campaigns/kasachstan.yaml"
LIST = "kasachstan.newsletter.arbeiterinnenmacht.example.org"
KZMAIL = Path(sys.executable).with_name("kzmail")


def _bundle(out: Path) -> None:
    result = CliRunner().invoke(
        cli, ["server", "bundle", CAMPAIGN, "--out", str(out), "--kzmail", str(KZMAIL)]
    )
    assert result.exit_code == 0, result.output


def test_bundle_holds_keys_and_list_texts_but_no_campaign_template_list_or_address(
    project: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bundle"
    _bundle(out)
    data = json.loads((out / "server.json").read_text(encoding="utf-8"))
    assert set(data) == {"format", "id", "seal_public", "credential_sha256", "lists"}
    assert data["lists"][LIST]["language"] == "de"
    assert data["lists"][LIST]["texts"]["button"] == "Jetzt abmelden"
    # the private sealing key and the credential itself stay with the organiser
    state = project / ".kzmail"
    private = (state / "seal.key").read_text().strip()
    credential = json.loads((state / "servers.json").read_text())["servers"][0]["credential"]
    everything = b"".join(p.read_bytes() for p in out.iterdir())
    assert private.encode() not in everything and credential.encode() not in everything
    assert not list(out.glob("*.yaml")) and not list(out.glob("*.csv"))
    assert b"<mj" not in everything and b"subject" not in everything
    emails = [
        line.split(",")[0]
        for line in (project / "subscribers.example.csv").read_text().splitlines()[1:]
    ]
    assert leaks([out], emails) == []


def test_systemd_accepts_the_hardened_unit(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    _bundle(out)
    unit = out / "kzmail-unsubscribe.service"
    text = unit.read_text(encoding="utf-8")
    for line in (
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/kzmail-unsubscribe",
        "NoNewPrivileges=yes",
        "MemoryMax=",
        f"ExecStart={KZMAIL} serve",
    ):
        assert line in text, line
    verify = shutil.which("systemd-analyze")
    assert verify, "systemd-analyze is missing: install systemd (scripts/apt-packages.txt)"
    checked = subprocess.run(
        [verify, "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0 and checked.stderr == "", checked.stderr
    # and it is a real check: a mistyped setting is reported
    broken = tmp_path / "broken.service"
    broken.write_text(text.replace("ProtectSystem=strict", "ProtectSystem=stric"))
    checked = subprocess.run(
        [verify, "verify", str(broken)], capture_output=True, text=True, check=False
    )
    assert "protect system value" in checked.stderr
