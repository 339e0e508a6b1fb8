"""Several relays share one campaign's work, each with its own connections and limits."""

from __future__ import annotations

from pathlib import Path

from kzmail.cli.common import current_workspace
from kzmail.services import send
from tests.helpers.campaigns import edit_campaign
from tests.helpers.servers import fault_server


def test_two_relays_share_the_list_and_nobody_is_mailed_twice(project: Path) -> None:
    campaign = project / "campaigns" / "kasachstan.yaml"
    with fault_server() as one, fault_server() as two:
        relays = "".join(
            f"  - host: 127.0.0.1\n    port: {server.port}\n    tls: none\n"
            f"    rate:\n      connections: 2\n      per_second: {limit}\n"
            for server, limit in ((one, 0), (two, 0))
        )
        edit_campaign(campaign, lambda text: text + f"\nrelays:\n{relays}")
        result = send.send(current_workspace(), campaign)
    assert result.report.sent == 12
    got = [a.recipient for a in one.handler.arrivals + two.handler.arrivals]
    assert sorted(got) == sorted(set(got))
    assert len(got) == 12
    assert one.handler.arrivals
    assert two.handler.arrivals
    assert result.run_key == "kasachstan"
