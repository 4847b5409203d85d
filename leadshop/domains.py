"""Which hosts belong to the same site: the registrable domain a business bought.

Several assessments ask it: the security one (is a script loaded from our own site?), the SEO one
(which domain to look up), the business-profile one (does a listing's website match the lead's?).
A short list of multi-label suffixes stands in for the full Public Suffix List, which is not
shipped; hosts without a registrable domain (IP addresses, ``localhost``) are only themselves.
"""

from __future__ import annotations

import ipaddress


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


# Public suffixes of more than one label that local businesses commonly sit under; the full
# Public Suffix List is not shipped.
MULTI_LABEL_SUFFIXES = frozenset(
    {
        "co.uk", "org.uk", "me.uk", "ltd.uk", "plc.uk", "net.uk", "ac.uk", "gov.uk",
        "com.au", "net.au", "org.au", "id.au", "co.nz", "net.nz", "org.nz", "co.za",
        "com.br", "com.mx", "com.ar", "com.co", "co.jp", "co.in", "co.il", "co.kr",
        "com.cn", "com.hk", "com.sg", "com.tr", "com.tw", "com.my", "com.ph", "co.id",
    }
)  # fmt: skip


def registrable_domain(host: str) -> str | None:
    """The name a site registered (example.co.uk for www.example.co.uk); None for IPs and
    single labels, which tldts gives no domain either."""
    host = host.rstrip(".").lower()
    if is_ip(host):
        return None
    labels = host.split(".")
    size = 3 if ".".join(labels[-2:]) in MULTI_LABEL_SUFFIXES else 2
    return ".".join(labels[-size:]) if len(labels) >= size else None


def same_site_hosts(host: str, other: str) -> bool:
    """Same registrable domain; a host without one (an IP, localhost) is only itself.

    MDN compares tldts domains, which are null for both an IP and localhost, so to MDN every such
    host is "the same site"; its public scanner never meets them, our demo and intranets do.
    """
    domain, other_domain = registrable_domain(host), registrable_domain(other)
    if domain is None or other_domain is None:
        return host.lower() == other.lower()
    return domain == other_domain
