# syntax=docker/dockerfile:1
# One image for both apps: `node dist/apps/api/main.js` (the default) or `node dist/apps/consumer/main.js`.

# Build: every dependency, then webpack bundles each app into dist/apps/<app>/main.js.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No package this build needs has an install script (the only production one is @scarf/scarf's telemetry).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json nest-cli.json ./
COPY libs ./libs
COPY apps ./apps
RUN npm run build

# Runtime: production dependencies (webpack leaves node_modules out of the bundles) and dist only.
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# docker-compose.yml's first service: chooses the RabbitMQ credentials into the `credentials` volume.
COPY docker/compose-credentials.js ./docker/
# The batch files go to /data, the generated credentials to /credentials; a named volume mounted
# there starts with this owner.
RUN mkdir /data /credentials && chown node:node /data /credentials
ENV DATA_OUTPUT_DIR=/data
# The `node` user (uid 1000) comes with the base image.
USER node
EXPOSE 3000 3001
CMD ["node", "dist/apps/api/main.js"]
