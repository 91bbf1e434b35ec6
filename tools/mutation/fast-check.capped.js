// fast-check as the unit tests see it under mutation testing (stryker.config.mjs maps the
// package here): every property runs at most MAX_RUNS times, from a fixed seed. A mutant is
// tested by dozens of property runs at once, thousands of times over; the cap keeps a full run
// in minutes, and the seed makes a mutant's verdict the same from one run to the next.
const path = require('node:path');

// Required by path, which the mapping of the package name does not catch.
const real = require(path.join(path.dirname(require.resolve('fast-check/package.json')), 'lib/cjs/fast-check.js'));

const MAX_RUNS = 100;
const SEED = 20_261_201;

function assert(property, params) {
  return real.assert(property, {
    seed: SEED,
    ...params,
    numRuns: Math.min(params?.numRuns ?? MAX_RUNS, MAX_RUNS),
  });
}

const fc = { ...real, assert };
module.exports = { ...fc, default: fc, __esModule: true };
