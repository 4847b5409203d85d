"""``parse_page``: what the checks of several assessments read off a page, read once."""

from __future__ import annotations

import json

import pytest

from leadshop import pages
from leadshop.pages import Anchor, parse_page


def test_title_absent_empty_and_collapsed() -> None:
    assert parse_page("<html><body><p>no title</p></body></html>").title is None
    assert parse_page("<title></title>").title == ""
    assert parse_page("<title>\n  Bob's   Plumbing &amp; Heating \n</title>").title == (
        "Bob's Plumbing & Heating"
    )
    assert parse_page("<title>First</title><title>Second</title>").title == "First"


def test_lang_from_the_html_element_only() -> None:
    assert parse_page('<html lang=" en-US "><body lang="de">x</body></html>').lang == "en-US"
    assert parse_page("<html><body>x</body></html>").lang == ""


def test_metas_by_name_or_property_case_insensitive_first_wins() -> None:
    facts = parse_page(
        '<meta name="Description" content="First">'
        '<meta name="description" content="Second">'
        '<meta property="og:title" content="Bob\'s">'
        '<meta name="robots">'
        '<meta charset="utf-8">'
    )
    assert facts.meta("description") == "First"
    assert facts.meta("DESCRIPTION") == "First"
    assert facts.meta("og:title") == "Bob's"
    assert facts.meta("robots") == ""  # present without content
    assert facts.meta("keywords") is None
    assert {"charset": "utf-8"} in facts.metas


def test_repeated_attributes_keep_the_first() -> None:
    facts = parse_page('<meta name="description" content="kept" content="dropped">')
    assert facts.meta("description") == "kept"


def test_link_hrefs_by_rel_token() -> None:
    facts = parse_page(
        '<link rel="Canonical" href="https://bob.example/">'
        '<link rel="shortcut icon" href="/favicon.ico">'
        '<link rel="stylesheet" href="/site.css">'
        '<link rel="alternate canonical-ish" href="/not-this">'
        '<link href="/no-rel">'
    )
    assert facts.link_hrefs("canonical") == ["https://bob.example/"]
    assert facts.link_hrefs("icon") == ["/favicon.ico"]
    assert facts.link_hrefs("preload") == []


def test_headings_per_level_in_order_with_nested_text() -> None:
    facts = parse_page(
        "<h1>Bob's <em>Plumbing</em></h1><h2>Services</h2><p>text</p>"
        "<h2>About\n  us</h2><h3>Hours</h3><h6></h6>"
    )
    assert facts.headings == {
        1: ["Bob's Plumbing"],
        2: ["Services", "About us"],
        3: ["Hours"],
        6: [""],
    }


def test_anchors_with_text_rel_and_href_trimmed() -> None:
    facts = parse_page(
        '<a href=" /services ">Our <b>services</b></a>'
        '<a href="https://other.example/" rel="nofollow noopener">Partner</a>'
        '<a name="top"></a>'
        '<a href="tel:+15035550100"><img src="phone.png" alt="Call"></a>'
    )
    assert facts.anchors == [
        Anchor("/services", "Our services"),
        Anchor("https://other.example/", "Partner", "nofollow noopener"),
        Anchor("", ""),
        Anchor("tel:+15035550100", ""),
    ]


def test_images_iframes_and_scripts_keep_their_attributes() -> None:
    facts = parse_page(
        '<img src="/a.png" alt=""><img src="/b.png">'
        '<iframe src="https://maps.example/embed"></iframe>'
        '<script src="/app.js" defer></script><script>var x = 1;</script>'
    )
    assert facts.images == [{"src": "/a.png", "alt": ""}, {"src": "/b.png"}]
    assert facts.iframes == [{"src": "https://maps.example/embed"}]
    assert facts.scripts == [{"src": "/app.js", "defer": ""}, {}]


def test_json_ld_valid_invalid_and_graph() -> None:
    business = {"@context": "https://schema.org", "@type": "Plumber", "name": "Bob's"}
    graph = {"@context": "https://schema.org", "@graph": [{"@type": "WebSite"}]}
    facts = parse_page(
        f'<script type="application/ld+json">{json.dumps(business)}</script>'
        '<script type="application/ld+json">{"@type": "Broken",}</script>'
        f'<script type=" Application/LD+JSON ">{json.dumps(graph)}</script>'
        '<script type="application/json">{"not": "structured data"}</script>'
    )
    assert facts.json_ld == [business, graph]
    assert facts.json_ld_errors == 1
    assert len(facts.scripts) == 4


def test_json_ld_may_contain_markup_like_text() -> None:
    data = {"@type": "Organization", "description": "Fast & <b>friendly</b>"}
    facts = parse_page(f'<script type="application/ld+json">{json.dumps(data)}</script>')
    assert facts.json_ld == [data]


def test_microdata_types_from_any_element() -> None:
    facts = parse_page(
        '<div itemscope itemtype=" https://schema.org/LocalBusiness ">'
        '<span itemprop="address" itemscope itemtype="https://schema.org/PostalAddress">'
        "1 Main St</span></div><p itemscope>no type</p>"
    )
    assert facts.microdata_types == [
        "https://schema.org/LocalBusiness",
        "https://schema.org/PostalAddress",
    ]


def test_text_is_the_visible_body_only() -> None:
    facts = parse_page(
        "<html><head><title>Title words</title><style>p { color: red }</style>"
        '<script>var hidden = "script words";</script></head>'
        "<body><h1>Welcome</h1><p>Open\n\n  9 to 5</p>"
        "<noscript>Enable JavaScript</noscript><template><p>Template words</p></template>"
        "<script>var more = 1;</script><p>Call us</p></body></html>"
    )
    assert facts.text == "Welcome Open 9 to 5 Call us"


def test_an_omitted_head_end_tag_does_not_hide_the_body() -> None:
    facts = parse_page(
        "<html><head><title>Shop</title><meta name=description content=x>"
        "<body><h1>Hello</h1><p>Visit <a href=/shop>the shop</a></p>"
    )
    assert facts.text == "Hello Visit the shop"
    assert facts.headings == {1: ["Hello"]}
    assert facts.anchors == [Anchor("/shop", "the shop")]


def test_limits_bound_every_list_and_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages, "MAX_ELEMENTS", 3)
    monkeypatch.setattr(pages, "MAX_TEXT_CHARS", 20)
    html = "".join(
        f'<a href="/{n}">link {n}</a><img src="{n}.png"><meta name="m{n}" content="{n}">'
        f"<h2>Heading {n}</h2><p>paragraph number {n}</p>"
        for n in range(10)
    )
    facts = parse_page(html)
    assert [anchor.href for anchor in facts.anchors] == ["/0", "/1", "/2"]
    assert len(facts.images) == len(facts.metas) == len(facts.headings[2]) == 3
    assert len(facts.text) == 20
    assert facts.text.startswith("link 0 Heading 0")


def test_an_oversized_json_ld_block_is_cut_and_counted_invalid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pages, "MAX_JSON_LD_CHARS", 50)
    data = {"@type": "Organization", "description": "x" * 500}
    facts = parse_page(
        f'<script type="application/ld+json">{json.dumps(data)}</script>'
        '<script type="application/ld+json">{"@type": "Plumber"}</script>'
    )
    assert facts.json_ld == [{"@type": "Plumber"}]
    assert facts.json_ld_errors == 1


def test_malformed_markup_keeps_what_was_read() -> None:
    facts = parse_page(
        '<html lang="en"><title>Shop</title><meta name="description" content="kept">'
        "<h1>Welcome</h1><p>before <![foo[ a marked section html.parser rejects ]]>"
        "<h2>never read</h2></p>"
    )
    assert (facts.lang, facts.title, facts.meta("description")) == ("en", "Shop", "kept")
    assert facts.headings == {1: ["Welcome"]}
    assert facts.text == "Welcome before"


def test_elements_left_open_keep_their_text() -> None:
    assert parse_page("<html><head><title>Cut off").title == "Cut off"
    facts = parse_page("<h1>One<h2>Two</h2><p><a href=/a>first <a href=/b>second")
    assert facts.headings == {1: ["One"], 2: ["Two"]}  # a new heading ends an unclosed one
    assert facts.anchors == [Anchor("/a", "first"), Anchor("/b", "second")]
    assert facts.text == "One Two first second"


def test_title_markup_is_literal_text_as_browsers_read_it() -> None:
    facts = parse_page(
        "<head><title>Yoga <script>alert('pwned')</script> &amp; more</title>"
        '<meta name="description" content="after"></head><body><h1>Hi</h1></body>'
    )
    assert facts.title == "Yoga <script>alert('pwned')</script> & more"
    assert facts.meta("description") == "after"  # parsing goes on after </title>
    assert facts.headings == {1: ["Hi"]}
