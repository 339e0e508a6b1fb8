"""Text rules shared by every stage: control characters, plain addresses, DNS labels.

Standard library only: the CLI loads this at start, before pydantic (`kzmail.models`,
which uses these rules for the campaign file) would be worth its import time.
"""

from __future__ import annotations

import re

# Text that must stay one line and display as written: C0 and C1 controls (with tab, CR, LF,
# NUL, U+0085), DEL, the Unicode line and paragraph separators and the bidi embeddings,
# overrides and isolates (U+202A-E, U+2066-9) that can make a name or cell read backwards.
CONTROL_SET = "[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
CONTROL_CHARS = re.compile(CONTROL_SET + "+")


def without_controls(value: str) -> str:
    """`value` with each run of `CONTROL_CHARS` as one space, stripped."""
    if value.isprintable() and value == value.strip():
        return value  # the common case, without a regex pass
    return CONTROL_CHARS.sub(" ", value).strip()


# One DNS label: letters, digits and inner hyphens, at most 63 characters (RFC 1035).
DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# A plain ASCII address, as it may go into a header or an SMTP envelope without quoting:
# a dot-atom local part (group 1), "@", a domain of two or more DNS labels (group 2).
# Use `fullmatch`: a pattern ending in `$` would let a final line break through.
PLAIN_ADDRESS = re.compile(rf"({_ATOM}(?:\.{_ATOM})*)@({DNS_LABEL}(?:\.{DNS_LABEL})+)")
# The one single-label domain a message may go to: `you@localhost`, for a test message.
LOOPBACK_ADDRESS = re.compile(rf"({_ATOM}(?:\.{_ATOM})*)@(localhost)", re.IGNORECASE)
