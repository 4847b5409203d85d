"""The demo businesses: one table of site definitions and the pure functions that render them.

Each site's security posture is chosen so the Mozilla HTTP Observatory (MDN version) algorithm
spreads the grades from A+ to F; ``grade`` and ``expected`` record what that algorithm gives and
why, so a disagreement with our own scanner is a finding to investigate, not a silent drift. The
arithmetic assumes a scanner that starts from the site's ``url``, follows its redirects, treats
``127.0.0.1`` (the stand-in third-party widget host) as a different site from ``localhost``, and
scores CORP same-origin +10 as the current MDN table does.

Everything here is deterministic text and bytes; serving (ports, TLS, cookies' random values,
CORS reflection) lives in ``sites.py``. Header values and HTML snippets may name ``{origin}``,
``{widgets_http}``, ``{widgets_https}`` and ``{booking_sri}``, known only once sockets are bound.

One site also serves two pages that no link leads to, a heavy slow one and a lean fast one
(``speed_pages``), built to land far apart in the visual and performance assessments. They sit
beside that site's home page so that no scan of the sites' home pages changes.

One site is hostile: a hacked yoga studio whose ``<title>`` carries a raw script tag and an
``<img onerror>`` (``raw_title``, ``HOSTILE_MARKUP``). Scanners read that markup as the page's
title and heading, so it flows into findings and data: the demo's proof that reports escape it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import random
import string
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from html import escape
from urllib.parse import quote_plus

Headers = tuple[tuple[str, str], ...]
Files = dict[str, tuple[str, bytes]]  # path -> (content type, body)

HTML = "text/html; charset=utf-8"
SITE_JS = b"""document.documentElement.classList.add("js");
document.querySelectorAll("form[data-contact]").forEach(function (form) {
  form.addEventListener("submit", function () {
    form.querySelector("button").textContent = "Sending\\u2026";
  });
});
"""
BOOKING_WIDGET_JS = b"""(function () {
  var slot = document.querySelector("[data-booking]");
  if (slot) {
    slot.textContent = "Next free appointment: tomorrow at 9:30 am. Call us to confirm.";
  }
})();
"""
CHAT_WIDGET_JS = b"""(function () {
  var bubble = document.createElement("div");
  bubble.className = "chat-bubble";
  bubble.textContent = "Questions? Chat with us";
  document.body.appendChild(bubble);
})();
"""

# What an attacker injected into the yoga studio's CMS: it reaches every scanner as the page's
# title and top heading, and must reach every report as text.
HOSTILE_MARKUP = '<script>alert("pwned")</script><img src=x onerror="alert(\'pwned\')">'

HEAVY_PATH = "/heavy"
LEAN_PATH = "/lean"
HEAVY_COPYRIGHT_YEAR = 2014
HEAVY_IMAGE_SIZE = (1200, 420)  # RGB noise, stored uncompressed: about 1.5 MB
HEAVY_SCRIPT_DELAY = 0.8  # seconds each render-blocking script keeps the page waiting
HEAVY_SCRIPTS = ("/heavy/js/legacy-framework.js", "/heavy/js/slider.js", "/heavy/js/tracking.js")
SLOW_PATHS: Mapping[str, float] = dict.fromkeys(HEAVY_SCRIPTS, HEAVY_SCRIPT_DELAY)
JS = "text/javascript; charset=utf-8"
# The slider: it "measures" the page in tight loops, before and in four tasks after load
# (main-thread work Lighthouse counts as blocking time), then pushes a banner in above
# everything (layout shift).
SLIDER_BUSY_MS = 200
SLIDER_JS = b"""function measureSlides(ms) {
  var end = Date.now() + ms, probes = 0;
  while (Date.now() < end) { probes += document.documentElement.offsetHeight > 0 ? 1 : 0; }
  return probes;
}
measureSlides(%(busy)d);
window.addEventListener("load", function () {
  for (var slide = 0; slide < 4; slide++) { setTimeout(measureSlides, 0, %(busy)d); }
  setTimeout(function () {
    var banner = document.createElement("div");
    banner.className = "promo";
    banner.innerHTML = "<b>HOLIDAY SPECIAL!</b> Order your pies before they sell out!";
    document.body.insertBefore(banner, document.body.firstChild);
  }, 300);
});
""" % {b"busy": SLIDER_BUSY_MS}
TRACKING_JS = b"""window.dataLayer = window.dataLayer || [];
window.dataLayer.push({ event: "pageview", page: location.pathname });
"""


@dataclass(frozen=True)
class SiteSpec:
    """One demo business: who it is (what a lead list and a page show) and how it is served.

    ``tls`` serves the site on ``https://localhost``; ``http_redirect`` (301/302) adds a plain
    port answering with that redirect to it; a site without ``tls`` is served over plain HTTP on
    ``127.0.0.1``. ``headers`` go on every response, ``cookies`` on the home page only (where
    scanners look), ``cors_reflect`` echoes any ``Origin`` with credentials allowed.
    """

    slug: str
    name: str
    tagline: str
    phone: str
    email: str
    street: str
    city: str
    region: str
    postal_code: str
    services: tuple[str, ...]
    about: str
    hours: tuple[tuple[str, str], ...]
    accent: str  # "#rrggbb": stylesheet, images and favicon, so screenshots tell sites apart
    grade: str
    expected: str
    tls: bool
    http_redirect: int | None = None
    server: str = "nginx"
    headers: Headers = ()
    cookies: tuple[str, ...] = ()  # Set-Cookie values; ``{token}`` becomes a fresh random id
    cors_reflect: bool = False
    extra_head: str = ""
    extra_body: str = ""
    description: str = ""  # meta description; empty leaves it out, as on many small sites
    schema_org: bool = True
    rating: tuple[float, int] | None = None  # Google stars and review count, shown and marked up
    maps_link: bool = True
    viewport: bool = True
    sitemap: bool = True
    alt_text: bool = True
    copyright_year: int | None = None  # None: the current year; an old one dates the site
    speed_pages: bool = False  # also serve HEAVY_PATH and LEAN_PATH
    # Goes into <title> as is, unescaped: a hacked CMS's injected markup, which our reports
    # must show as text. None: the title is built (escaped) from the name and the tagline.
    raw_title: str | None = None

    @property
    def address(self) -> str:
        return f"{self.street}, {self.city}, {self.region} {self.postal_code}"

    @property
    def rgb(self) -> tuple[int, int, int]:
        value = int(self.accent.removeprefix("#"), 16)
        return value >> 16, (value >> 8) & 0xFF, value & 0xFF


CATALOG: tuple[SiteSpec, ...] = (
    SiteSpec(
        slug="harborview-dental",
        name="Harborview Family Dental",
        tagline="Gentle dentistry for all ages",
        phone="(503) 555-0142",
        email="hello@harborviewdental.example",
        street="1482 NW Harbor Way, Suite 200",
        city="Portland",
        region="OR",
        postal_code="97209",
        services=(
            "Check-ups and cleanings",
            "Children's dentistry",
            "Teeth whitening",
            "Crowns and bridges",
            "Same-day emergency appointments",
        ),
        about="Dr. Maya Chen and her team have looked after Pearl District smiles since 2009, "
        "with evening hours for busy families and a calm, modern practice.",
        hours=(("Mon-Thu", "8:00-18:00"), ("Fri", "8:00-14:00"), ("Sat-Sun", "Closed")),
        accent="#0f766e",
        grade="A+",
        expected="A+ (150): HTTPS, 301 from HTTP, HSTS 2 years, CSP default-src 'none' with "
        "frame-ancestors, nosniff, X-Frame-Options DENY, Referrer-Policy, Permissions-Policy, "
        "COOP, CORP, Secure+HttpOnly+SameSite session cookie, SRI on a third-party script",
        tls=True,
        http_redirect=301,
        headers=(
            ("Strict-Transport-Security", "max-age=63072000; includeSubDomains"),
            (
                "Content-Security-Policy",
                "default-src 'none'; script-src 'self' {widgets_https}; style-src 'self'; "
                "img-src 'self'; font-src 'self'; connect-src 'self'; form-action 'self'; "
                "base-uri 'none'; frame-ancestors 'none'",
            ),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "strict-origin-when-cross-origin"),
            ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("Cross-Origin-Resource-Policy", "same-origin"),
        ),
        cookies=("__Host-hvd_session={token}; Path=/; Secure; HttpOnly; SameSite=Lax",),
        extra_body='<section id="booking"><h2>Book online</h2>'
        "<p data-booking>Online booking is loading.</p></section>\n"
        '<script src="{widgets_https}/booking-widget.js" integrity="{booking_sri}" '
        'crossorigin="anonymous" defer></script>',
        description="Family and children's dentist in Portland's Pearl District: check-ups, "
        "whitening, crowns and same-day emergency appointments.",
        rating=(4.9, 212),
    ),
    SiteSpec(
        slug="sunrise-bakery",
        name="Sunrise Bakery & Cafe",
        tagline="Fresh bread every morning since 1987",
        phone="(541) 555-0117",
        email="sunrisebakery1987@mail.example",
        street="22 Oak Street",
        city="Hood River",
        region="OR",
        postal_code="97031",
        services=(
            "Sourdough and rye loaves",
            "Custom birthday and wedding cakes",
            "Breakfast pastries",
            "Espresso bar",
            "Office catering",
        ),
        about="Three generations of the Alvarez family have baked on Oak Street. Come early: "
        "the cinnamon rolls are gone by ten.",
        hours=(("Tue-Sat", "6:30-15:00"), ("Sun", "7:00-13:00"), ("Mon", "Closed")),
        accent="#b45309",
        grade="F",
        expected="F (0): HTTP only (no TLS, no redirect, no HSTS), no CSP, no X-Frame-Options, "
        "no nosniff, PHPSESSID cookie without Secure/HttpOnly/SameSite, PHP version disclosed; "
        "dated page (no viewport, no meta description, no alt text, (c) 2017)",
        tls=False,
        server="Apache/2.4.29 (Ubuntu)",
        headers=(("X-Powered-By", "PHP/7.2.24"),),
        cookies=("PHPSESSID={token}; path=/", "cart_items=0; path=/"),
        schema_org=False,
        maps_link=False,
        viewport=False,
        sitemap=False,
        alt_text=False,
        copyright_year=2017,
        speed_pages=True,
    ),
    SiteSpec(
        slug="bella-napoli",
        name="Bella Napoli Pizzeria",
        tagline="Wood-fired Neapolitan pizza",
        phone="(541) 555-0163",
        email="ciao@bellanapoli.example",
        street="310 Alder Street",
        city="Eugene",
        region="OR",
        postal_code="97401",
        services=(
            "Wood-fired pizza",
            "Fresh pasta",
            "Takeout and delivery",
            "Private events",
            "Gluten-free crust",
        ),
        about="Our oven came from Naples and so did our dough recipe. Family-run since 2012.",
        hours=(("Mon-Thu", "11:30-21:00"), ("Fri-Sat", "11:30-22:30"), ("Sun", "12:00-20:00")),
        accent="#b91c1c",
        grade="D",
        expected="D (30): HTTPS only (no plain-HTTP port) with mixed content: an http:// chat "
        "script without SRI and an http:// image from a third-party host; CSP allows "
        "'unsafe-inline', 'unsafe-eval' and http:; HSTS 1 year, nosniff, SAMEORIGIN",
        tls=True,
        server="Apache",
        headers=(
            ("Strict-Transport-Security", "max-age=31536000"),
            (
                "Content-Security-Policy",
                "default-src 'self' 'unsafe-inline' 'unsafe-eval' http: https: data:",
            ),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "SAMEORIGIN"),
        ),
        cookies=("wp_lang=en_US; Path=/; Secure",),
        extra_head="<script>window.dataLayer = window.dataLayer || [];</script>",
        extra_body='<section id="order"><h2>Order online</h2><p>Secure ordering, pickup in 20 '
        'minutes.</p><p><img src="{widgets_http}/trust-badge.png" alt="Secure ordering badge" '
        'width="120" height="40"></p></section>\n'
        '<script src="{widgets_http}/chat-widget.js"></script>',
        description="Wood-fired Neapolitan pizza in downtown Eugene. Takeout, delivery and "
        "private events.",
    ),
    SiteSpec(
        slug="oak-iron-plumbing",
        name="Oak & Iron Plumbing",
        tagline="Licensed plumbers, 24/7 emergency service",
        phone="(503) 555-0188",
        email="office@oakironplumbing.example",
        street="7731 SE Foster Road",
        city="Portland",
        region="OR",
        postal_code="97206",
        services=(
            "Emergency leak repair",
            "Water heater installation",
            "Drain cleaning",
            "Repiping",
            "Bathroom and kitchen remodels",
        ),
        about="Owner-operated since 2004. Upfront pricing, licensed and insured (CCB #000000).",
        hours=(("Mon-Fri", "7:00-19:00"), ("Sat-Sun", "Emergencies only")),
        accent="#1d4ed8",
        grade="B-",
        expected="B- (65): HTTPS, 301 from HTTP, HSTS 1 year, nosniff, X-Frame-Options "
        "SAMEORIGIN; no CSP; session cookie HttpOnly but not Secure (HSTS softens it)",
        tls=True,
        http_redirect=301,
        server="nginx/1.18.0",
        headers=(
            ("Strict-Transport-Security", "max-age=31536000"),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "SAMEORIGIN"),
        ),
        cookies=("sessionid={token}; Path=/; HttpOnly",),
        description="Licensed Portland plumbers with 24/7 emergency service.",
        copyright_year=2022,
    ),
    SiteSpec(
        slug="greenleaf-landscaping",
        name="Greenleaf Landscaping",
        tagline="Design, planting and seasonal care",
        phone="(503) 555-0129",
        email="grow@greenleaf.example",
        street="4120 Commercial Street SE",
        city="Salem",
        region="OR",
        postal_code="97302",
        services=(
            "Garden design",
            "Lawn care plans",
            "Irrigation systems",
            "Tree and hedge trimming",
            "Seasonal clean-ups",
        ),
        about="A crew of twelve gardeners serving the Willamette Valley, with a partner portal "
        "for property managers.",
        hours=(("Mon-Fri", "7:30-17:00"), ("Sat", "9:00-13:00"), ("Sun", "Closed")),
        accent="#15803d",
        grade="C",
        expected="C (50): HTTPS, 301 from HTTP, HSTS, nosniff, X-Frame-Options DENY, "
        "Referrer-Policy; CORS echoes any Origin with Access-Control-Allow-Credentials: true "
        "(and sends * with credentials otherwise); CSP only in a <meta> tag; bonuses withheld",
        tls=True,
        http_redirect=301,
        headers=(
            ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "strict-origin-when-cross-origin"),
        ),
        cookies=("session={token}; Path=/; Secure; HttpOnly; SameSite=None",),
        cors_reflect=True,
        extra_head='<meta http-equiv="Content-Security-Policy" content="default-src \'self\'; '
        "img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'\">",
        description="Landscaping in Salem and the Willamette Valley: garden design, lawn care, "
        "irrigation and seasonal clean-ups.",
    ),
    SiteSpec(
        slug="northside-auto",
        name="Northside Auto Repair",
        tagline="Honest repairs, fair prices",
        phone="(503) 555-0176",
        email="service@northsideauto.example",
        street="915 N Lombard Street",
        city="Portland",
        region="OR",
        postal_code="97217",
        services=(
            "Brakes and suspension",
            "Oil changes",
            "Engine diagnostics",
            "Tires and alignment",
            "Pre-purchase inspections",
        ),
        about="ASE-certified technicians, loaner cars and a 24-month warranty on every repair.",
        hours=(("Mon-Fri", "7:30-18:00"), ("Sat", "8:00-14:00"), ("Sun", "Closed")),
        accent="#374151",
        grade="A-",
        expected="A- (85): HTTPS, 302 from HTTP, HSTS only 30 days, CSP header with "
        "'unsafe-inline' in style-src only and frame-ancestors, Referrer-Policy, no "
        "X-Content-Type-Options; Secure+SameSite cookies; bonuses withheld below 90",
        tls=True,
        http_redirect=302,
        headers=(
            ("Strict-Transport-Security", "max-age=2592000"),
            (
                "Content-Security-Policy",
                "default-src 'self'; style-src 'self' 'unsafe-inline'; object-src 'none'; "
                "frame-ancestors 'self'; form-action 'self'",
            ),
            ("Referrer-Policy", "strict-origin-when-cross-origin"),
        ),
        cookies=(
            "XSRF-TOKEN={token}; Path=/; Secure; SameSite=Lax",
            "northside_session={token}; Path=/; Secure; HttpOnly; SameSite=Lax",
        ),
        extra_body='<p class="notice" style="border-left: 4px solid #f59e0b">Winter tire '
        "changeover: book before November 1st and save 15%.</p>",
        description="Auto repair in North Portland: brakes, diagnostics, tires and oil changes "
        "by ASE-certified technicians.",
    ),
    SiteSpec(
        slug="lotus-flow-yoga",
        name="Lotus Flow Yoga Studio",
        tagline=HOSTILE_MARKUP + " Breathe, stretch, belong",
        phone="(541) 555-0151",
        email="namaste@lotusflowyoga.example",
        street="118 W 5th Avenue",
        city="Bend",
        region="OR",
        postal_code="97701",
        services=(
            "Beginner vinyasa",
            "Hot yoga",
            "Prenatal classes",
            "Meditation workshops",
            "Teacher training",
        ),
        about="A small studio above the bike shop, run by two teachers since 2016. Its website "
        "runs an old CMS plugin that someone has used to inject a script into every page title.",
        hours=(("Mon-Fri", "6:00-20:30"), ("Sat-Sun", "8:00-12:00")),
        accent="#7c3aed",
        grade="F",
        expected="F (10): HTTP only (no TLS, no redirect, no HSTS), no CSP, no nosniff, a "
        "login cookie without Secure/HttpOnly/SameSite (not a session name: -20, not -40); "
        "X-Frame-Options SAMEORIGIN (bonus withheld below 90); WordPress disclosed; hacked: "
        "its <title> carries a raw <script> and an <img onerror>",
        tls=False,
        server="Apache/2.4.41 (Ubuntu)",
        headers=(("X-Frame-Options", "SAMEORIGIN"), ("X-Powered-By", "WordPress")),
        cookies=("wordpress_logged_in={token}; path=/",),
        description="Yoga classes in downtown Bend: vinyasa, hot yoga, prenatal and meditation.",
        copyright_year=2019,
        raw_title="Lotus Flow Yoga Studio | " + HOSTILE_MARKUP,
    ),
)


@dataclass(frozen=True)
class Links:
    """Where things listen, known only once the sockets are bound."""

    origin: str  # the site's canonical origin (its HTTPS one when it has TLS)
    widgets_http: str  # the stand-in third-party host, plain HTTP
    widgets_https: str  # the same host over HTTPS

    def placeholders(self) -> Mapping[str, str]:
        return {
            "origin": self.origin,
            "widgets_http": self.widgets_http,
            "widgets_https": self.widgets_https,
            "booking_sri": sri(BOOKING_WIDGET_JS),
        }


def sri(body: bytes) -> str:
    """The ``integrity`` attribute value for ``body``."""
    return "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode("ascii")


def site_files(spec: SiteSpec, links: Links) -> Files:
    """Every path the site answers 200 for; anything else is the 404 page."""
    files: Files = {
        "/": (HTML, home_page(spec, links).encode()),
        "/styles.css": ("text/css; charset=utf-8", stylesheet(spec).encode()),
        "/js/site.js": ("text/javascript; charset=utf-8", SITE_JS),
        "/img/storefront.png": ("image/png", png(480, 240, spec.rgb)),
        "/favicon.ico": ("image/x-icon", favicon(spec.rgb)),
        "/robots.txt": ("text/plain; charset=utf-8", robots_txt(spec, links).encode()),
    }
    if spec.sitemap:
        files["/sitemap.xml"] = ("application/xml", sitemap_xml(links).encode())
    if spec.speed_pages:
        files.update(speed_page_files(spec))
    return files


def speed_page_files(spec: SiteSpec) -> Files:
    """The heavy page, its slow scripts and big image, and the lean page (``SLOW_PATHS``)."""
    return {
        HEAVY_PATH: (HTML, heavy_page(spec).encode()),
        HEAVY_SCRIPTS[0]: (JS, legacy_framework_js()),
        HEAVY_SCRIPTS[1]: (JS, SLIDER_JS),
        HEAVY_SCRIPTS[2]: (JS, TRACKING_JS),
        "/heavy/img/hero.png": ("image/png", noise_png(*HEAVY_IMAGE_SIZE)),
        LEAN_PATH: (HTML, lean_page(spec).encode()),
    }


def widget_files() -> Files:
    """What the stand-in third-party host (a chat / booking widget vendor) serves."""
    return {
        "/booking-widget.js": ("text/javascript; charset=utf-8", BOOKING_WIDGET_JS),
        "/chat-widget.js": ("text/javascript; charset=utf-8", CHAT_WIDGET_JS),
        "/trust-badge.png": ("image/png", png(120, 40, (22, 163, 74))),
    }


def home_page(spec: SiteSpec, links: Links) -> str:
    fields = links.placeholders()
    name = escape(spec.name)
    year = spec.copyright_year or dt.date.today().year
    tel = "+1" + "".join(c for c in spec.phone if c.isdigit())
    maps = "https://www.google.com/maps/search/?api=1&query=" + quote_plus(
        f"{spec.name}, {spec.address}"
    )
    alt = f' alt="{name} storefront"' if spec.alt_text else ""
    head = [
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        if spec.viewport
        else "",
        f"<title>{spec.raw_title or f'{name} | {escape(spec.tagline)}'}</title>",
        f'<meta name="description" content="{escape(spec.description)}">'
        if spec.description
        else "",
        f'<link rel="canonical" href="{escape(links.origin)}/">' if spec.description else "",
        _open_graph(spec, links) if spec.description else "",
        '<link rel="icon" href="/favicon.ico">',
        '<link rel="stylesheet" href="/styles.css">',
        _json_ld(spec, links) if spec.schema_org else "",
        spec.extra_head.format_map(fields),
    ]
    services = "\n".join(f"<li>{escape(s)}</li>" for s in spec.services)
    hours = "\n".join(
        f"<tr><th>{escape(days)}</th><td>{escape(time)}</td></tr>" for days, time in spec.hours
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
{chr(10).join(line for line in head if line)}
</head>
<body>
<header class="top">
<a class="brand" href="/">{name}</a>
<nav><a href="#services">Services</a> <a href="#about">About</a>
<a href="#contact">Contact</a></nav>
<a class="call" href="tel:{tel}">{escape(spec.phone)}</a>
</header>
<main>
<section class="hero">
<img src="/img/storefront.png"{alt} width="480" height="240">
<div>
<h1>{escape(spec.tagline)}</h1>
<p>{name}, {escape(spec.city)}. Call <a href="tel:{tel}">{escape(spec.phone)}</a> or
send us a message below.</p>
<p><a class="button" href="#contact">Get in touch</a></p>
</div>
</section>
<section id="services"><h2>Our services</h2>
<ul>
{services}
</ul>
</section>
<section id="about"><h2>About us</h2><p>{escape(spec.about)}</p></section>
{spec.extra_body.format_map(fields)}
<section id="contact"><h2>Contact</h2>
<div class="columns">
<div>
<address>{name}<br>{escape(spec.street)}<br>{escape(spec.city)}, {escape(spec.region)}
{escape(spec.postal_code)}</address>
<p>Phone: <a href="tel:{tel}">{escape(spec.phone)}</a><br>
Email: <a href="mailto:{escape(spec.email)}">{escape(spec.email)}</a></p>
{_maps_and_reviews(spec, maps)}
<table class="hours"><caption>Opening hours</caption>
{hours}
</table>
</div>
<form method="post" action="/contact" data-contact>
<label>Name <input name="name" autocomplete="name" required></label>
<label>Phone or email <input name="reply_to" required></label>
<label>How can we help? <textarea name="message" rows="4"></textarea></label>
<button type="submit">Send</button>
</form>
</div>
</section>
</main>
<footer>
<p>&copy; {year} {name}. All rights reserved.</p>
<p>{escape(spec.address)} &middot; {escape(spec.phone)}</p>
</footer>
<script src="/js/site.js" defer></script>
</body>
</html>
"""


def heavy_page(spec: SiteSpec) -> str:
    """The site as it was built in 2014: a fixed 1200 px layout without a viewport tag, tiny
    text and links, render-blocking scripts, a huge image without dimensions, a banner pushed in
    late above everything, and the phone number only in the footer."""
    name = escape(spec.name)
    tel = "+1" + "".join(c for c in spec.phone if c.isdigit())
    scripts = "\n".join(f'<script src="{path}"></script>' for path in HEAVY_SCRIPTS)
    nav = " ".join(
        f'<a href="/#{anchor}">{label}</a>'
        for anchor, label in (("", "HOME"), ("services", "MENU"), ("about", "ABOUT US"))
    )
    services = "".join(f"<td>{escape(s)}</td>" for s in spec.services)
    filler = " ".join([escape(spec.about)] * 6)
    news = "\n".join(  # three years of monthly posts: the footer is far below the first screen
        f"<h3>{month % 12 + 1}/01/{HEAVY_COPYRIGHT_YEAR - month // 12}</h3>"
        f"<p>{escape(spec.services[month % len(spec.services)])}: back this month! {filler}</p>"
        for month in range(36)
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{name} - Welcome!!!</title>
{scripts}
<style>
body {{ margin: 0; font: 10px/1.3 Verdana, sans-serif; background: #fef3c7; }}
.page {{ width: 1200px; margin: 0 auto; background: #fff; }}
.masthead {{ padding: 4px; background: {spec.accent}; color: #fff; font-size: 13px; }}
nav a {{ display: inline-block; padding: 1px 3px; color: #fff; font-size: 9px; }}
.hero {{ width: 100%; }}
.promo {{ height: 160px; background: #fde68a; font-size: 11px; }}
footer {{ font-size: 9px; color: #6b7280; padding: 4px; }}
</style>
</head>
<body>
<div class="page">
<div class="masthead">{name} <nav>{nav}</nav></div>
<img class="hero" src="/heavy/img/hero.png">
<h1 style="font-size: 14px">Welcome to {name}!!!</h1>
<p>{filler}</p>
<table><tr>{services}</tr></table>
<h2 style="font-size: 12px">News</h2>
{news}
<footer>&copy; {HEAVY_COPYRIGHT_YEAR} {name}. Call <a href="tel:{tel}">{escape(spec.phone)}</a>.
Best viewed in Internet Explorer at 1024x768.</footer>
</div>
</body>
</html>
"""


def lean_page(spec: SiteSpec) -> str:
    """The same business done right for phones: a viewport tag, readable text, one small inline
    stylesheet, no images or scripts, and a large click-to-call button at the top."""
    name = escape(spec.name)
    tel = "+1" + "".join(c for c in spec.phone if c.isdigit())
    hours = "".join(f"<li>{escape(days)}: {escape(time)}</li>" for days, time in spec.hours)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name} | {escape(spec.city)}</title>
<link rel="icon" href="/favicon.ico">
<style>
body {{ margin: 0; font: 18px/1.5 system-ui, sans-serif; color: #1f2937; }}
header {{ padding: 1rem; background: {spec.accent}; color: #fff; }}
h1 {{ margin: 0 0 .5rem; font-size: 1.6rem; }}
.call {{ display: block; padding: .9rem; border-radius: .5rem; background: #fff;
  color: {spec.accent}; font-weight: 700; text-align: center; text-decoration: none; }}
main, footer {{ padding: 0 1rem 1rem; }}
</style>
</head>
<body>
<header>
<h1>{name}</h1>
<p>{escape(spec.tagline)}</p>
<a class="call" href="tel:{tel}">Call {escape(spec.phone)}</a>
</header>
<main>
<h2>Opening hours</h2>
<ul>{hours}</ul>
<h2>Visit us</h2>
<p>{escape(spec.address)}</p>
</main>
<footer>&copy; {dt.date.today().year} {name}</footer>
</body>
</html>
"""


def not_found_page(spec: SiteSpec) -> str:
    name = escape(spec.name)
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Page not found | {name}</title>
<link rel="stylesheet" href="/styles.css"></head>
<body><main><h1>Page not found</h1>
<p>Sorry, that page does not exist. <a href="/">Back to {name}</a></p></main></body>
</html>
"""


def redirect_page(location: str) -> str:
    """The body servers send with a redirect, for clients that show it."""
    href = escape(location)
    return f'<!DOCTYPE html>\n<title>Moved</title>\n<p>Moved to <a href="{href}">{href}</a>.</p>\n'


_STYLESHEET = string.Template("""\
:root { --accent: $accent; }
* { box-sizing: border-box; }
body { margin: 0; font: 17px/1.55 system-ui, sans-serif; color: #1f2937; background: #fafaf9; }
a { color: var(--accent); }
header.top { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center;
  justify-content: space-between; padding: 1rem 5vw; background: var(--accent); }
header.top a { color: #fff; text-decoration: none; }
.brand { font-size: 1.4rem; font-weight: 700; }
nav a { margin-right: 1rem; }
.call { font-weight: 700; border: 2px solid #fff; border-radius: 2rem; padding: .3rem 1rem; }
main { max-width: 64rem; margin: 0 auto; padding: 0 5vw 2rem; }
section { margin: 2.5rem 0; }
.hero { display: flex; flex-wrap: wrap; gap: 2rem; align-items: center; }
.hero img { max-width: 100%; height: auto; border-radius: .75rem; }
.hero > div { flex: 1 1 18rem; }
h1 { font-size: 2.2rem; line-height: 1.2; margin: 0 0 1rem; }
h2 { color: var(--accent); }
.button { display: inline-block; background: var(--accent); color: #fff; padding: .7rem 1.4rem;
  border-radius: .4rem; text-decoration: none; font-weight: 600; }
.columns { display: flex; flex-wrap: wrap; gap: 2rem; }
.columns > * { flex: 1 1 18rem; }
address { font-style: normal; }
.hours th { text-align: left; padding-right: 1.5rem; font-weight: 600; }
form label { display: block; margin-bottom: .8rem; }
input, textarea { display: block; width: 100%; padding: .5rem; font: inherit;
  border: 1px solid #d1d5db; border-radius: .3rem; }
button { background: var(--accent); color: #fff; border: 0; padding: .7rem 1.4rem;
  border-radius: .4rem; font: inherit; font-weight: 600; }
.notice { background: #fffbeb; padding: .8rem 1rem; }
.chat-bubble { position: fixed; right: 1rem; bottom: 1rem; background: var(--accent);
  color: #fff; padding: .6rem 1rem; border-radius: 2rem; }
footer { background: #111827; color: #d1d5db; padding: 1.5rem 5vw; font-size: .9rem; }
""")


def stylesheet(spec: SiteSpec) -> str:
    return _STYLESHEET.substitute(accent=spec.accent)


def robots_txt(spec: SiteSpec, links: Links) -> str:
    if not spec.sitemap:
        return "User-agent: *\nDisallow: /admin/\n"
    return f"User-agent: *\nAllow: /\n\nSitemap: {links.origin}/sitemap.xml\n"


def sitemap_xml(links: Links) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        f"  <url><loc>{escape(links.origin)}/</loc></url>\n"
        "</urlset>\n"
    )


def _open_graph(spec: SiteSpec, links: Links) -> str:
    """The tags link previews (social networks, messengers) read."""
    tags = {
        "og:type": "website",
        "og:title": spec.name,
        "og:description": spec.description,
        "og:url": f"{links.origin}/",
    }
    return "\n".join(
        f'<meta property="{key}" content="{escape(value)}">' for key, value in tags.items()
    )


def _maps_and_reviews(spec: SiteSpec, maps: str) -> str:
    lines = []
    if spec.maps_link:
        lines.append(f'<p><a href="{escape(maps)}">Find us on Google Maps</a></p>')
    if spec.rating:
        stars, count = spec.rating
        lines.append(
            f'<p class="reviews"><a href="{escape(maps)}">Rated {stars} of 5 from {count} '
            "Google reviews</a></p>"
        )
    return "\n".join(lines)


def _json_ld(spec: SiteSpec, links: Links) -> str:
    """schema.org LocalBusiness, the structured data business-profile and SEO checks look for."""
    data: dict[str, object] = {
        "@context": "https://schema.org",
        "@type": "LocalBusiness",
        "name": spec.name,
        "url": f"{links.origin}/",
        "telephone": spec.phone,
        "email": spec.email,
        "address": {
            "@type": "PostalAddress",
            "streetAddress": spec.street,
            "addressLocality": spec.city,
            "addressRegion": spec.region,
            "postalCode": spec.postal_code,
            "addressCountry": "US",
        },
        "openingHours": [f"{days} {time}" for days, time in spec.hours],
    }
    if spec.rating:
        stars, count = spec.rating
        data["aggregateRating"] = {
            "@type": "AggregateRating",
            "ratingValue": stars,
            "reviewCount": count,
        }
    payload = json.dumps(data, indent=1).replace("</", "<\\/")
    return f'<script type="application/ld+json">\n{payload}\n</script>'


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _encode_png(width: int, height: int, scanlines: bytes, level: int) -> bytes:
    """8-bit RGB scanlines, each led by its filter byte, as a PNG file."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(scanlines, level))
        + _png_chunk(b"IEND", b"")
    )


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A vertical gradient from ``rgb`` to near-white: enough to look like a placeholder photo."""
    rows = []
    for y in range(height):
        t = y / max(height - 1, 1) * 0.8
        pixel = bytes(round(c + (245 - c) * t) for c in rgb)
        rows.append(b"\x00" + pixel * width)  # filter type 0 per scanline
    return _encode_png(width, height, b"".join(rows), 9)


_WARM_TONES = bytes(range(96, 256, 5)) * 8  # 256 entries: noise bytes mapped to mid-to-light


@lru_cache(maxsize=2)
def noise_png(width: int, height: int) -> bytes:
    """Seeded colour noise saved without compression: an unoptimised photo upload's weight."""
    pixels = random.Random(HEAVY_COPYRIGHT_YEAR).randbytes(width * height * 3)
    pixels = pixels.translate(_WARM_TONES)
    stride = width * 3
    rows = (b"\x00" + pixels[start : start + stride] for start in range(0, len(pixels), stride))
    return _encode_png(width, height, b"".join(rows), 0)


def legacy_framework_js() -> bytes:
    """About 100 KB of script the page never calls: an old theme's bundled framework."""
    table = ",".join(str(i * 7919 % 10007) for i in range(20_000))
    return (
        f"var LEGACY_TABLE = [{table}];\n"
        "function legacyLookup(i) { return LEGACY_TABLE[i % LEGACY_TABLE.length]; }\n"
    ).encode()


def favicon(rgb: tuple[int, int, int]) -> bytes:
    """A 16x16 ICO wrapping a PNG (allowed since Windows Vista, read by every browser)."""
    image = png(16, 16, rgb)
    directory = struct.pack("<HHH", 0, 1, 1)  # reserved, type icon, one image
    entry = struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(image), 6 + 16)
    return directory + entry + image
