'use strict';
// Jest cannot require @fastify/static 10: it loads content-disposition 3, which is ESM-only, and
// Jest on Node 20 has no require(esm). Node itself loads it fine, so only in-process tests get
// this stand-in: Swagger's /docs page and /docs-json work, its static assets are not served.
// apps/api/test/docs.e2e-spec.ts checks the real page and assets against the built app.
const fp = require('fastify-plugin');

module.exports = fp(async () => undefined, { name: '@fastify/static' });
