"""Personal-data scrubbing: e-mail addresses, phone numbers, Singapore NRIC/FIN numbers, URLs.

Each kind is replaced by a placeholder token. Regexes are module constants; phone candidates are
checked against their context so look-alikes survive: prices (``$9123 4567``, ``S$8,888``), years,
dates, post ids (``#98765432``, ``post 98765432``, ``id=...``) and digits inside longer numbers.
"""

from __future__ import annotations

import re

PLACEHOLDERS = {"email": "[EMAIL]", "url": "[URL]", "nric": "[NRIC]", "phone": "[PHONE]"}

EMAIL_RE = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
URL_RE = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)\]}]", re.IGNORECASE)
NRIC_RE = re.compile(r"(?<![A-Za-z0-9])[STFGM]\d{7}[A-Z](?![A-Za-z0-9])", re.IGNORECASE)
# Singapore: 8 digits starting 6/8/9, optional +65 / 65 / (65); a space or hyphen may split the 8 digits
# (not a dot: "9123.4567" is a decimal number)
SG_PHONE_RE = re.compile(r"(?<![\w+$/.,-])(?:(?:\+|00)?\(?65\)?[ .-]?)?[689]\d{3}[ -]?\d{4}(?![\w/]|[.,]\d)")
# international: + or 00 and country code, then 6-14 more digits in groups
INTL_PHONE_RE = re.compile(r"(?<![\w+$])(?:\+|00)[1-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,6}(?![\w/]|[.,]\d)")
# North-American style (555) 123-4567 / 555-123-4567
NANP_RE = re.compile(r"(?<![\w$])(?:\(\d{3}\)\s?|\d{3}[.-])\d{3}[.-]\d{4}(?![\w/]|[.,]\d)")
NOT_PHONE_BEFORE_RE = re.compile(r"(?:#|\bpost|\bid|\bno\.?|\bref|\bthread|\border|\b[A-Z]{0,2}\$|[$€£¥]|\busd|\bsgd)"
                                 r"\s*[:=#]?\s*$", re.IGNORECASE)


DIGITS_HINT_RE = re.compile(r"\d{3}")


def _no_digits(s: str) -> bool:
    """True when ``s`` surely holds no digit (ASCII without 0-9): the digit regexes need not run."""
    return s.isascii() and not any(d in s for d in "0123456789")


def _digits(s: str) -> int:
    return sum(ch.isdigit() for ch in s)


def scrub_pii(text: str, *, urls: bool = True, counts: dict[str, int] | None = None) -> str:
    """Replace personal data in ``text`` by placeholders; add hits per kind to ``counts``."""
    counts = {} if counts is None else counts

    def sub(kind: str, rx: re.Pattern, s: str, check=None) -> str:
        def repl(m: re.Match) -> str:
            if check is not None and not check(m, s):
                return m.group(0)
            counts[kind] = counts.get(kind, 0) + 1
            return PLACEHOLDERS[kind]
        return rx.sub(repl, s)

    def phone_ok(m: re.Match, s: str) -> bool:
        before = s[max(0, m.start() - 12):m.start()]
        n = _digits(m.group(0))
        return not NOT_PHONE_BEFORE_RE.search(before) and 8 <= n <= 15

    if "@" in text:
        text = sub("email", EMAIL_RE, text)
    if urls and ("://" in text or "www." in text.lower()):
        text = sub("url", URL_RE, text)
    if _no_digits(text):  # NRIC numbers and phone numbers all have digits
        return text
    text = sub("nric", NRIC_RE, text)
    if DIGITS_HINT_RE.search(text):  # every phone format has 3+ digits in a row
        text = sub("phone", INTL_PHONE_RE, text, phone_ok)
        text = sub("phone", SG_PHONE_RE, text, phone_ok)
        text = sub("phone", NANP_RE, text, phone_ok)
    return text
