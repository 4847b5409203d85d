"""What an HTML page says about itself, read once: the tags several assessments grade.

Why one parser: the security, business-profile and on-page SEO checks all look at the same
kinds of tags (metas, scripts, links, JSON-LD). ``parse_page`` walks the markup once with the
standard library's tolerant ``HTMLParser`` and returns plain data; the checks stay pure
functions of that data. Bounded: text and lists stop growing at named limits, so a huge page
costs memory in proportion to the limits, not to the page.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from typing import Any

MAX_TEXT_CHARS = 200_000  # of visible text kept
MAX_ELEMENTS = 2_000  # kept per list (links, images, metas, ...)
MAX_JSON_LD_CHARS = 200_000  # per <script type="application/ld+json">
SKIPPED_TEXT = frozenset({"script", "style", "noscript", "template", "head", "title"})
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta"})
# What may stand in <head>; any other start tag begins the body, as in a browser, whether or not
# </head> was written (it may be left out, and often is).
HEAD_CONTENT = frozenset(
    {"html", "head", "title", "meta", "link", "script", "style", "noscript", "template", "base"}
)
_SPACES = re.compile(r"\s+")

Attributes = dict[str, str]


@dataclass
class Anchor:
    href: str
    text: str
    rel: str = ""


@dataclass
class PageFacts:
    """The page's tags as attribute dicts (the first of repeated attributes wins)."""

    lang: str = ""
    title: str | None = None  # None: no <title> at all; "" an empty one
    metas: list[Attributes] = field(default_factory=list)
    links: list[Attributes] = field(default_factory=list)  # <link>
    scripts: list[Attributes] = field(default_factory=list)
    anchors: list[Anchor] = field(default_factory=list)
    images: list[Attributes] = field(default_factory=list)
    iframes: list[Attributes] = field(default_factory=list)
    headings: dict[int, list[str]] = field(default_factory=dict)  # level -> texts, in order
    json_ld: list[Any] = field(default_factory=list)  # each parsed block
    json_ld_errors: int = 0  # blocks that are not valid JSON
    microdata_types: list[str] = field(default_factory=list)  # itemtype values
    text: str = ""  # visible body text, whitespace collapsed

    def meta(self, key: str) -> str | None:
        """The content of the first ``<meta name=key>`` or ``<meta property=key>``."""
        key = key.lower()
        for tag in self.metas:
            if key in (tag.get("name", "").lower(), tag.get("property", "").lower()):
                return tag.get("content", "")
        return None

    def link_hrefs(self, rel: str) -> list[str]:
        """``href`` of every ``<link>`` whose rel list contains ``rel``."""
        return [
            tag.get("href", "")
            for tag in self.links
            if rel.lower() in tag.get("rel", "").lower().split()
        ]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.facts = PageFacts()
        self._open: list[str] = []  # elements whose text we are inside
        self._text: list[str] = []
        self._text_chars = 0
        self._title: list[str] | None = None
        self._heading: tuple[int, list[str]] | None = None
        self._anchor: tuple[Anchor, list[str]] | None = None
        self._json_ld: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element: Attributes = {}
        for name, value in attrs:
            element.setdefault(name, value or "")
        facts = self.facts
        if tag not in HEAD_CONTENT and "head" in self._open:
            del self._open[self._open.index("head") :]
        if tag == "html" and not facts.lang:
            facts.lang = element.get("lang", "").strip()
        elif tag == "title" and facts.title is None:
            self._title = []
            # A title is text up to </title> (RCDATA), as browsers read it: markup inside is
            # literal, so a hacked "<script>" title is kept as written, not dropped.
            self.set_cdata_mode("title")
        elif tag in ("meta", "link", "img", "iframe"):
            kept = {"meta": facts.metas, "link": facts.links, "img": facts.images}
            _append(kept.get(tag, facts.iframes), element)
        elif tag == "script":
            _append(facts.scripts, element)
            if element.get("type", "").strip().lower() == "application/ld+json":
                self._json_ld = []
        elif tag == "a":
            self._finish_anchor()  # an <a> inside an unclosed <a> ends it, as in a browser
            anchor = Anchor(element.get("href", "").strip(), "", element.get("rel", ""))
            self._anchor = (anchor, [])
        elif len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self._finish_heading()  # headings do not nest: a new one ends an unclosed one
            self._heading = (int(tag[1]), [])
        if "itemtype" in element:
            _append(facts.microdata_types, element["itemtype"].strip())
        if tag not in VOID:
            self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            while self._open and self._open.pop() != tag:
                pass
        if tag == "title":
            self._finish_title()
        elif tag == "script" and self._json_ld is not None:
            self._parse_json_ld("".join(self._json_ld))
            self._json_ld = None
        elif tag == "a":
            self._finish_anchor()
        elif self._heading is not None and tag == f"h{self._heading[0]}":
            self._finish_heading()

    def _finish_title(self) -> None:
        if self._title is not None:
            self.facts.title = _collapse(unescape("".join(self._title)))
            self._title = None

    def _finish_anchor(self) -> None:
        if self._anchor is not None:
            anchor, words = self._anchor
            anchor.text = _collapse(" ".join(words))
            _append(self.facts.anchors, anchor)
            self._anchor = None

    def _finish_heading(self) -> None:
        if self._heading is not None:
            level, words = self._heading
            _append(self.facts.headings.setdefault(level, []), _collapse(" ".join(words)))
            self._heading = None

    def handle_data(self, data: str) -> None:
        if self._title is not None:
            self._title.append(data)
        if self._json_ld is not None:
            room = MAX_JSON_LD_CHARS - sum(map(len, self._json_ld))
            if room > 0:  # a cut block no longer parses: it is counted as an error
                self._json_ld.append(data[:room])
            return
        if any(tag in SKIPPED_TEXT for tag in self._open):
            return
        for collected in (self._heading, self._anchor):
            if collected is not None:
                collected[1].append(data)
        kept = data[: max(0, MAX_TEXT_CHARS - self._text_chars)]
        if kept:
            self._text.append(kept)
            self._text_chars += len(kept)

    def _parse_json_ld(self, source: str) -> None:
        try:
            _append(self.facts.json_ld, json.loads(source))
        except ValueError:
            self.facts.json_ld_errors += 1

    def result(self) -> PageFacts:
        """The facts, elements left open at the end (a cut-off page) kept with what they read."""
        if self._title is not None:  # a title never closed: the parser still holds its text
            self._title.append(self.rawdata)
        self._finish_title()
        self._finish_anchor()
        self._finish_heading()
        self.facts.text = _collapse(" ".join(self._text))[:MAX_TEXT_CHARS]
        return self.facts


def _append(items: list[Any], item: Any) -> None:
    if len(items) < MAX_ELEMENTS:
        items.append(item)


def _collapse(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def parse_page(html: str) -> PageFacts:
    """The page's facts; markup the parser cannot follow ends the walk, keeping what was read."""
    collector = _Collector()
    try:
        collector.feed(html)
        collector.close()
    except AssertionError:  # html.parser's way of rejecting malformed declarations
        pass
    return collector.result()
