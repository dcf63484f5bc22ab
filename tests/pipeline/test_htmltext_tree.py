"""pipeline/htmltext.py on lxml's tree: the same text as a tree built from the parser's events (the
way BeautifulSoup built it), whatever the markup, and markup nested past libxml2's depth limit keeps
its text."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from contracts import markup as M
from pipeline import htmltext as H
from pipeline.textnorm import normalize_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SAMPLES = [
    "", " ", "\ufeff<b>x</b>", "<!-- c -->", "<!-- c -->tail", "a<!--x-->b", "<?pi x?>t", "<![CDATA[hi]]> x",
    "<p>a</p><p>b", "&amp;&lt;&#x1F600;&nbsp;x", "<div class='quote'>q</div>after", "<br><br/>x\r\ny\rz",
    "<a href=x><img alt=':)' class='smilie'></a>", "<pre>  a \n b</pre>", "<textarea> x </textarea>y",
    "<html><head><title>t</title></head><body>b</body></html><!-- end -->\n", "<table><tr><td>a<td>b</table>",
    "\x00\x01abc", "<o:p class='quote'>word</o:p>", "<svg><text>s</text></svg>t", "x\v\f y", "<p>\u00a0\u2003x</p>",
    "<blockquote>x<blockquote>y</blockquote>z</blockquote>w", "<p>b</p></html><-->", "<body>a</body><body>b",
    "<frameset><p>x</p>", "<plaintext><b>x</b>", "<table>a<tr>b<td>c</table>", "<head><p>h</p></head>t",
    "<a class='username' data-user-id='3'>@bob</a> hi",
    '<blockquote class="bbCodeBlock bbCodeBlock--quote" data-source="post: 7"><div class="bbCodeBlock-title">'
    '<a href="/goto/post?id=7">Al said:</a></div>quoted</blockquote>Reply <a href="https://x.org/">link</a>',
    '<div class="bbCodeBlock-expandLink"><a>Click to expand...</a></div>Own words.<aside>sig</aside>',
]


def result(walk: H.HtmlText) -> tuple:
    return (normalize_text(H.strip_app_signatures(walk.text)[0])[0], walk.quoted_post_ids, walk.n_quotes,
            walk.n_signatures, walk.chars_text, walk.chars_link, walk.chars_image)


def by_events(html: str, mk: M.EngineMarkup, **options) -> H.HtmlText:
    walk = H._TextWalk(H.rules_for(mk), options.get("image_placeholder", ""), options.get("image_alt", True),
                       options.get("mention_placeholder", "@user"))
    return walk.run(H.parse_events(html[1:] if html[:1] == "\ufeff" else html))


def corpus() -> list[str]:
    """The samples, every HTML fixture, and mangled copies of them (cut, spliced, stray tags)."""
    docs = SAMPLES + [p.read_text(encoding="utf-8", errors="replace") for p in sorted(FIXTURES.rglob("*.html"))]
    rng = random.Random(0)
    mangled = []
    for _ in range(400):
        doc = rng.choice(docs)
        i, j = sorted(rng.randrange(len(doc) + 1) for _ in range(2))
        stray = rng.choice(["<", ">", "</div>", "<div class='quote'>", "&", "<!--", "<b>", "\x00", "<br>", "]]>",
                            "</body>", "<html>", "<table>", "<td>", "<title>", "</html>", "<![CDATA["])
        mangled.append(rng.choice([doc[:i], doc[:i] + doc[j:], doc[:i] + stray + doc[i:], doc[i:j]]))
    return docs + mangled


@pytest.mark.parametrize("options", [{}, {"image_alt": False, "image_placeholder": "[img]", "mention_placeholder": ""}])
def test_lxml_tree_and_parser_events_give_the_same_text(options):
    for mk in (M.GENERIC, M.HTML)[:2 if not options else 1]:
        for doc in corpus():
            assert result(H.html_to_text(doc, markup=mk, **options)) == result(by_events(doc, mk, **options)), doc[:200]


def test_markup_nested_past_the_parser_depth_keeps_its_text():
    deep = "<div>" * 5000 + "deep <b>words</b> here" + "</div>" * 5000
    assert H.html_to_text(deep).text.strip() == "deep words here"
    quoted = "<div class='quote'>" * 400 + "quoted" + "</div>" * 400 + "own words"
    out = H.html_to_text(quoted)
    assert out.text.strip() == "own words" and out.n_quotes == 1


def test_a_forum_post_converts_as_documented():
    html = ('<blockquote class="bbCodeBlock bbCodeBlock--quote" data-source="post: 7"><div class="bbCodeBlock-title">'
            '<a href="/goto/post?id=7">Al said:</a></div>quoted</blockquote>Hello &amp; <b>welcome</b><br>\n'
            'see <a href="https://x.org/">this</a> <img class="smilie" alt=":)"><!-- hidden -->!')
    out = H.html_to_text(html, markup=M.GENERIC)
    assert normalize_text(out.text)[0] == "Hello & welcome\nsee this :) !"
    assert out.quoted_post_ids == ["7"] and out.n_quotes == 1
    assert (out.chars_link, out.chars_image) == (4, 2)


def test_threads_side_by_side_give_the_serial_text():
    """Dask workers and thread pools clean batches in threads: each parses with its own parser (one
    lxml parser shared by two threads crashes the process), and gets the text a single thread gets."""
    from concurrent.futures import ThreadPoolExecutor

    rng = random.Random(5)
    docs = [rng.choice(SAMPLES) + f"<p>post {i}</p>" + rng.choice(SAMPLES) for i in range(3000)]
    mk = M.GENERIC
    serial = [result(H.html_to_text(d, markup=mk)) for d in docs]

    def convert(chunk: list[str]) -> list[tuple]:
        return [result(H.html_to_text(d, markup=mk)) for d in chunk]

    with ThreadPoolExecutor(max_workers=4) as pool:
        chunks = list(pool.map(convert, [docs[i::4] for i in range(4)]))
    assert [chunks[i % 4][i // 4] for i in range(len(docs))] == serial
