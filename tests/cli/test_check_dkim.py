"""`kzmail check` reports DKIM problems: an unaligned domain, a short key."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from typer.testing import CliRunner

from kzmail.cli.main import cli
from tests.helpers.campaigns import edit_campaign

CAMPAIGN = "campaigns/kasachstan.yaml"


def _with_dkim(
    project: Path, domain: str, key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (project / "news.private").write_bytes(pem)
    edit_campaign(
        project / CAMPAIGN,
        lambda t: (
            t + (f"\ndkim:\n  domain: {domain}\n  selector: news\n  key_file: ../news.private\n")
        ),
    )


def test_aligned_dkim_gives_no_warning(project: Path) -> None:
    _with_dkim(project, "arbeiterinnenmacht.example.org", ed25519.Ed25519PrivateKey.generate())
    result = CliRunner().invoke(cli, ["check", CAMPAIGN, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["warnings"] == []


def test_unaligned_domain_and_short_key_are_warned(project: Path) -> None:
    _with_dkim(project, "elsewhere.example.net", rsa.generate_private_key(65537, 1024))
    result = CliRunner().invoke(cli, ["check", CAMPAIGN])
    assert result.exit_code == 0  # a warning, not a reason to refuse sending
    assert "warning: dkim.domain: elsewhere.example.net is not aligned" in result.stderr
    assert "1024 bits" in result.stderr
    report = json.loads(CliRunner().invoke(cli, ["check", CAMPAIGN, "--json"]).stdout)
    assert len(report["warnings"]) == 2
