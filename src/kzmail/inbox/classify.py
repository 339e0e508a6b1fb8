"""Why a delivery failed, decided like a careful postmaster: hard, soft, policy or delayed.

Takes the enhanced status code (RFC 3463, e.g. `5.1.1`), the SMTP reply code and the
diagnostic text a bounce carries for one recipient, and hands back a `Verdict`. Only a
`hard` verdict may suppress an address on one occurrence. A 5xx that blames the sender
(spam, reputation, policy, content, virus, SPF/DKIM/DMARC) is `policy`: never suppressed,
since the reader did nothing wrong. The wording wins over the code, because many MTAs
send `5.0.0` or `550` for everything, and a blocklist answer must never cost a reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["hard", "soft", "policy", "delayed"]

_POLICY = re.compile(
    r"spam|junk|blocked|block ?list|black ?list|blacklisted|deny ?list|listed (?:at|in|on)"
    r"|spamhaus|barracuda|sorbs|spamcop|\brbl\b|\bdnsbl\b|reputation|policy|poli[cz]ies"
    r"|content (?:rejected|filter)|rejected (?:for|due to) content|virus|malware|phish"
    r"|\bspf\b|\bdkim\b|\bdmarc\b|authenticat|unauthenticated|not authorized to send"
    r"|suspicious|bulk mail|abuse|prohibited|banned|refused by (?:the )?(?:filter|recipient's)"
    r"|mail(?:ing)? (?:looks|appears) (?:like|to be)|too many complaints|\bptr\b|reverse dns"
    r"|\bhelo\b|not accepted for policy|gmx.*(?:ablehnung|rejected)|554[- ]5\.7\.1",
    re.I,
)
_HARD = re.compile(
    r"user unknown|unknown user|no such user|no such (?:mailbox|recipient|address|person)"
    r"|unknown (?:local[- ]part|recipient|address|mailbox)|recipient (?:address )?rejected"
    r"|mailbox (?:unavailable|not found|does not exist|disabled|is disabled|closed|inactive)"
    r"|(?:address|account|mailbox|user) (?:does not exist|doesn't exist|not found|disabled"
    r"|has been disabled|is disabled|inactive|deactivated|suspended|expired|closed|unknown)"
    r"|invalid (?:recipient|mailbox|address)|not a valid (?:mailbox|recipient)"
    r"|no mailbox here|host or domain name not found|domain (?:not found|does not exist)"
    r"|name or service not known|nxdomain|unrouteable address|no such domain"
    r"|user (?:has )?moved|mailbox (?:has )?moved|address (?:has )?changed"
    r"|doesn't have a .* account|unbekannt|existiert nicht|kein postfach",
    re.I,
)
_SOFT = re.compile(
    r"mailbox (?:is )?full|over ?quota|quota exceeded|exceeded (?:the |their )?(?:storage|quota)"
    r"|insufficient (?:system )?storage|greylist|graylist|try (?:again )?later|temporar"
    r"|timed? ?out|expired|too long in queue|rate limit|too many (?:messages|connections)"
    r"|message (?:is )?too (?:big|large)|size (?:limit|exceeds)|exceeds .*size"
    r"|connection (?:refused|reset|lost)|network|dns|deferred|service unavailable",
    re.I,
)

# enhanced codes that mean the address is gone (RFC 3463), and those that blame us
_HARD_CODES = {"5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.2.1"}
_POLICY_PREFIXES = ("5.7.", "4.7.")
_SOFT_CODES = {"5.2.2", "5.2.3", "5.3.4", "4.2.2", "5.4.7"}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one failure means: `kind`, and the reason to show and keep."""

    kind: Kind
    reason: str

    @property
    def suppresses(self) -> bool:
        """Only a hard bounce suppresses on one occurrence (soft ones are counted)."""
        return self.kind == "hard"


def _words(text: str, pattern: re.Pattern[str]) -> str | None:
    found = pattern.search(text)
    return found.group(0).lower() if found else None


def classify(status: str, diagnostic: str, *, action: str = "failed") -> Verdict:
    """The verdict for one recipient of a bounce (status `""` when the bounce gave none)."""
    text = " ".join(diagnostic.split())[:2000]
    if action.lower().startswith(("delayed", "relayed", "delivered", "expanded")):
        return Verdict("delayed", f"{action.lower()}: nothing to do")
    policy = _words(text, _POLICY)
    if policy is not None or status.startswith(_POLICY_PREFIXES):
        return Verdict("policy", f"blocked by the receiver ({policy or 'policy ' + status})")
    hard = _words(text, _HARD)
    soft = _words(text, _SOFT)
    if status.startswith("4") or status in _SOFT_CODES:
        return Verdict("soft", soft or hard or f"temporary failure {status}")
    if status in _HARD_CODES and (hard is not None or soft is None):
        return Verdict("hard", hard or _CODE_WORDS.get(status, status))
    if soft is not None:  # "5.0.0 mailbox full": the words are more precise than the code
        return Verdict("soft", soft)
    if hard is not None and (status.startswith("5") or not status):
        return Verdict("hard", hard)
    return Verdict("soft", f"unclear failure {status or '(no status)'}: counted, not suppressed")


_CODE_WORDS = {
    "5.1.1": "user unknown",
    "5.1.2": "domain not found",
    "5.1.3": "bad address syntax",
    "5.1.6": "mailbox moved",
    "5.1.10": "null MX: domain accepts no mail",
    "5.2.1": "mailbox disabled",
}
