# syntax=docker/dockerfile:1
# One image for every LeadShop service (docker-compose.yml): the Prefect server, the Dask
# scheduler and workers, the Prefect worker and the one-shot `leadshop deploy`.

# Node 20 + npm, taken from the official Node image built on the same Debian release.
FROM node:20-bookworm-slim AS node

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LEADSHOP_CHROMIUM_PATH=/usr/bin/chromium

# Debian's Chromium, driven by Lighthouse and Playwright (their own browser downloads are not
# used), and NSS's certutil, which hands Chromium the CAs SSL_CERT_FILE adds (leadshop/browser.py).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        chromium libnss3-tools ca-certificates \
    && rm -rf /var/lib/apt/lists/*

COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && node --version && npm --version

WORKDIR /app

# Lighthouse, pinned in package-lock.json, into the project's node_modules (tasks/pagespeed.py
# looks for node_modules/.bin/lighthouse next to the packages).
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error && npm cache clean --force

# Editable, so the installed `leadshop` finds prefect.yaml and node_modules here in /app, and a
# deployment's flow runs (prefect.yaml: set_working_directory) from this folder.
COPY . .
RUN pip install -e . && leadshop --help >/dev/null

# An unprivileged user; the volumes' mount points exist and are its own, so named volumes
# mounted there start writable by it.
RUN useradd --create-home --uid 1000 leadshop \
    && mkdir -p /data /artifacts \
    && chown leadshop:leadshop /data /artifacts
USER leadshop

ENV LEADSHOP_HOME=/data \
    LEADSHOP_ARTIFACTS_DIR=/artifacts

CMD ["leadshop", "doctor"]
