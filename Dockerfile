# syntax=docker/dockerfile:1
# Multi-stage: build with dev dependencies, run with production dependencies only, as a non-root user.

FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The `node` devDependency is a Node binary for machines whose system Node is older; the image has one.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY patches ./patches
# Install scripts stay off; the one we need is our own: patch-package applies patches/ (see there).
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npx patch-package --error-on-fail

FROM node:24-slim
ENV NODE_ENV=production \
    CONFIG_FILE=/app/config/production.yaml \
    PORT=3000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY views ./views
COPY config ./config
RUN install -d -o node -g node -m 0700 /app/data
USER node
# The public port. With management.port (or MANAGEMENT_PORT) set, e.g. 9464, the instance also
# listens there for /metrics, /healthz and /readyz: let Prometheus reach it, never publish it.
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "--enable-source-maps", "dist/src/main.js"]
