# syntax=docker/dockerfile:1
# plugin-bot: the webhook server (`serve`, the default command) and the workers (`worker`).
# Secrets are never part of the image: they come at run time from env files or
# docker secrets (see compose.yaml and the README's "Deploying" section).

# Node.js 20 from the official image; Debian 12's own nodejs is 18.
FROM node:20-bookworm-slim AS node

FROM python:3.11-slim-bookworm

# bubblewrap is the sandbox; util-linux gives prlimit and setpriv. (The base image
# already has ca-certificates for the npm registry, GitHub and the model API.)
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        bubblewrap=0.8.* \
        util-linux=2.38.* \
    && rm -rf /var/lib/apt/lists/*

COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
    && node --version && npm --version

# A fixed uid so host files (keys, a bind-mounted data dir) can be given to it.
ARG BOT_UID=10001
RUN groupadd --system --gid "${BOT_UID}" plugin-bot \
    && useradd --system --uid "${BOT_UID}" --gid plugin-bot \
        --home-dir /home/plugin-bot --create-home --shell /usr/sbin/nologin plugin-bot \
    && install -d -o plugin-bot -g plugin-bot -m 0711 /var/lib/plugin-bot

# The bot in its own virtualenv; the template pack beside it (TEMPLATE_DIR).
WORKDIR /opt/plugin-bot/src
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN python -m venv /opt/plugin-bot/venv \
    && /opt/plugin-bot/venv/bin/pip install --no-cache-dir . \
    && rm -rf /opt/plugin-bot/src
COPY templates /opt/plugin-bot/templates

ENV PATH=/opt/plugin-bot/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    BOT_DATA_DIR=/var/lib/plugin-bot \
    TEMPLATE_DIR=/opt/plugin-bot/templates/elizaos-plugin \
    SANDBOX=bwrap

USER ${BOT_UID}:${BOT_UID}

# Warm npm's content cache (BOT_DATA_DIR/cache/npm, where installs look first) with every
# package the template pack's lockfile names, so the first job downloads nothing it
# already pins. An empty named volume mounted at BOT_DATA_DIR starts with this cache.
WORKDIR /tmp/pack-cache
COPY --chown=plugin-bot:plugin-bot templates/elizaos-plugin/package-lock.json ./
RUN node -e 'const fs = require("fs"); \
        const root = JSON.parse(fs.readFileSync("package-lock.json", "utf8")).packages[""]; \
        fs.writeFileSync("package.json", JSON.stringify(root, null, 2));' \
    && npm ci --ignore-scripts --no-audit --no-fund \
        --cache /var/lib/plugin-bot/cache/npm \
    && rm -rf /tmp/pack-cache/node_modules /tmp/pack-cache/package.json \
        /home/plugin-bot/.npm/_logs

WORKDIR /var/lib/plugin-bot
VOLUME ["/var/lib/plugin-bot"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

ENTRYPOINT ["plugin-bot"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
