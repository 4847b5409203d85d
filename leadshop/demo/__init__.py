"""Demo businesses served on loopback, with a local test CA: what ``make demo`` and tests scan.

``catalog`` defines the sites (who they are, their security posture, the grade it earns),
``sites`` serves them (``DemoSites``, ``write_leads_csv``, ``python -m leadshop.demo.sites``),
``ca`` makes the CA their HTTPS certificate chains to. Nothing is re-exported here, so that
``python -m leadshop.demo.sites`` does not import its own module twice.
"""
