# The halb operator image: Node 22 slim, production dependencies only, a non-root user, and
# the operator itself as PID 1. halb is TypeScript run by Node 22's type stripping, so there
# is no build step: the deps stage only installs node_modules.
#   docker build -t registry.example.com/halb:0.1.0 .
# test/deploy/image.test.ts runs this image's ENTRYPOINT (with CMD) from the files it copies.
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev: no TypeScript, vitest or the bundled Node 22 of the `node` devDependency.
# --ignore-scripts: ssh2's optional native speed-ups are not built; it runs in pure JS.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
# The image's `node` user, by number, so that runAsNonRoot can verify it without a passwd lookup.
USER 1000:1000
EXPOSE 8080
# Node is PID 1 and needs no init: `halb operator` handles SIGTERM and SIGINT itself (stops the
# workers, releases the leader Lease, exits 0) and starts no child processes to reap.
ENTRYPOINT ["node", "/app/src/cli/main.ts"]
CMD ["operator"]
