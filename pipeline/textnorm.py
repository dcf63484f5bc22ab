"""Text normalisation for the clean stage: mojibake repair, Unicode form, invisible characters,
whitespace, optional lowercasing.

Mojibake is repaired with ftfy (well kept, handles multi-layer UTF-8/cp1252/latin-1 mix-ups that
no hand-made table covers). ftfy runs only on non-ASCII text (pure ASCII cannot hold mojibake),
which keeps the common case fast; quotes are not uncurled and HTML is not unescaped (the HTML step
already decoded entities, and a plain-text source's "&amp;" is literal text).
"""

from __future__ import annotations

import re
import unicodedata

import ftfy

FTFY_CONFIG = ftfy.TextFixerConfig(unescape_html=False, uncurl_quotes=False, fix_latin_ligatures=False,
                                   fix_character_width=False, normalization=None, explain=False)
# zero-width, bidi controls, soft hyphen, BOM, C0/C1 controls except \t and \n
INVISIBLE_RE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\u00ad"
                          "\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
# Runs of spaces become one plain space, spaces around a line break go. Both patterns skip what needs
# no change (a lone plain space; a line break without spaces): forum text is mostly that, and each
# match costs a replacement.
_OTHER_SPACES = "\t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000\x0c"  # a character class body
SPACE_RE = re.compile(f"[{_OTHER_SPACES}][ {_OTHER_SPACES}]*| [ {_OTHER_SPACES}]+")
LINE_EDGE_RE = re.compile(r" +\n *|\n +")
PARA_RE = re.compile(r"\n{3,}")
FORMS = ("NFC", "NFKC")


def normalize_text(text: str, *, form: str = "NFC", lowercase: bool = False) -> tuple[str, bool]:
    """Return (normalised text, whether ftfy changed it)."""
    if form not in FORMS:
        raise ValueError(f"unicode form must be one of {FORMS}, got {form!r}")
    repaired = False
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    ascii_only = text.isascii()
    if not ascii_only:
        fixed = ftfy.fix_text(text, FTFY_CONFIG)
        repaired = fixed != text
        text = unicodedata.normalize(form, fixed)
    text = INVISIBLE_RE.sub("", text)
    # each regex only where it can match (substring tests cost a fraction of a regex scan)
    if not ascii_only or "  " in text or "\t" in text or "\x0c" in text:
        text = SPACE_RE.sub(" ", text)
    if " \n" in text or "\n " in text:
        text = LINE_EDGE_RE.sub("\n", text)
    if "\n\n\n" in text:
        text = PARA_RE.sub("\n\n", text)
    text = text.strip()
    if lowercase:
        text = text.lower()
    return text, repaired
