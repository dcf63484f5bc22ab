"""PII scrubbing (pipeline/pii.py): personal data is scrubbed; prices, years, dates and post ids survive."""

from __future__ import annotations

import pytest

from pipeline.pii import scrub_pii


@pytest.mark.parametrize("text,expected,kind", [
    ("mail me at ah.beng+forum@example.com.sg ok", "mail me at [EMAIL] ok", "email"),
    ("call 9123 4567 tonight", "call [PHONE] tonight", "phone"),
    ("call 91234567.", "call [PHONE].", "phone"),
    ("office +65 6123-4567", "office [PHONE]", "phone"),
    ("hp (65) 8123 4567", "hp [PHONE]", "phone"),
    ("london +44 20 7946 0958 ok", "london [PHONE] ok", "phone"),
    ("us (555) 123-4567", "us [PHONE]", "phone"),
    ("my ic S1234567D lost", "my ic [NRIC] lost", "nric"),
    ("fin g7654321x", "fin [NRIC]", "nric"),
    ("see https://forums.hardwarezone.com.sg/threads/abc.7105036/page-2 now", "see [URL] now", "url"),
    ("or www.example.com.", "or [URL].", "url"),
])
def test_pii_scrubbed(text, expected, kind):
    counts: dict[str, int] = {}
    assert scrub_pii(text, counts=counts) == expected
    assert counts == {kind: 1}


@pytest.mark.parametrize("text", [
    "price $9123 4567? no, S$8888 only, or $91234567",
    "In 2019 and 2024-2025 prices rose 1,234,567.89 percent",
    "see post #98765432 and post 98765432, id=91234567",
    "thread 155324874 on 12/08/2023, order no. 81234567",
    "ratio 81234567.5 and 9123.4567",
    "S12345678D is not an NRIC, nor is XS1234567DX",
])
def test_look_alikes_survive(text):
    counts: dict[str, int] = {}
    assert scrub_pii(text, counts=counts) == text
    assert counts == {}


def test_urls_param_off_keeps_urls():
    assert scrub_pii("go to https://example.com/x", urls=False) == "go to https://example.com/x"
