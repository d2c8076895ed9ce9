# syntax=docker/dockerfile:1
# feedkeeper container image. Build: docker build -t feedkeeper .
# Run (see docker-compose.yml and docs/operations.md, "As a container"):
#   docker run --init --read-only --tmpfs /tmp -v feedkeeper-data:/var/lib/feedkeeper -p 127.0.0.1:9464:9464 feedkeeper
# Built and run by .ci/run (deploy/container/ci-image.sh): read-only, as `node`, /healthz, SIGTERM.
# Behind a TLS-intercepting proxy, hand npm the CA bundle as a build secret (nothing of it stays in
# the image): --secret id=npm_ca,src=/etc/ssl/certs/ca-certificates.crt
# Where the public base cannot be pulled, build one (deploy/container/build-base.sh) and pass it:
# --build-arg NODE_IMAGE=... (any Debian with node >= 20.18 at /usr/local/bin and a `node` user, uid 1000).

ARG NODE_IMAGE=node:22-bookworm-slim

# ---- build: compile TypeScript with the dev dependencies ----
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=npm_ca \
    if [ -s /run/secrets/npm_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca; fi \
 && npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies and the compiled code only ----
FROM ${NODE_IMAGE} AS runtime
# Inside a container the metrics/health server must listen beyond loopback.
ENV NODE_ENV=production \
    FEEDKEEPER_METRICS_HOST=0.0.0.0 \
    FEEDKEEPER_METRICS_PORT=9464
WORKDIR /opt/feedkeeper
COPY package.json package-lock.json ./
RUN --mount=type=secret,id=npm_ca \
    if [ -s /run/secrets/npm_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca; fi \
 && npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force \
 && rm -rf /root/.npm /tmp/*
COPY --from=build /src/dist/src ./dist/src
COPY config ./config
# The volume is the only place the daemon writes (ledger, checkpoint, recordings): the image runs
# with a read-only root file system. Relative paths in the config (./data/...) resolve here.
RUN mkdir -p /var/lib/feedkeeper && chown node:node /var/lib/feedkeeper
VOLUME ["/var/lib/feedkeeper"]
WORKDIR /var/lib/feedkeeper
USER node
EXPOSE 9464
# No curl in the slim image: node itself asks /healthz (200 while the event loop keeps up).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.FEEDKEEPER_METRICS_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM: the daemon flushes the recording and closes the ledger, then exits 0. Give it 10 s
# (docker stop -t 10, compose stop_grace_period). Run with --init (compose: init: true) so that a
# proper init is PID 1 and forwards signals; node as PID 1 also works because the daemon handles
# SIGTERM itself, but it would not reap zombies.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/opt/feedkeeper/dist/src/cli/main.js"]
CMD ["run", "--config", "/opt/feedkeeper/config/default.json"]
