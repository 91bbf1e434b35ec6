// @ts-check
// Mutation testing of the core over the unit tests (no RabbitMQ). `npm run test:mutation` runs
// tools/mutation/run.mjs, which runs Stryker once per group below: a group's files are mutated
// and judged by the group's own specs only. The scores and every surviving mutant: docs/testing.md.

/**
 * The files whose unit tests must catch a bug, by group, with the specs that judge them. A file
 * such as rfc3339.ts is reached by most specs of the repository; judged by all of them, each of
 * its mutants would load a dozen spec files, and the run would take an hour.
 * `testTimeout` (ms), where given, replaces the unit config's 90 s for the group's specs: a mutant
 * whose promise never settles then fails its test in that time, and the run goes on in the same
 * process, instead of waiting for Stryker's timeout, which restarts the test runner.
 * @type {Record<string, { files: string[], specs: string[], testTimeout?: number }>}
 */
export const groups = {
  'api-validation': {
    files: [
      'apps/api/src/message/entries-validation.pipe.ts',
      'libs/dto-fast-check/src/dto-fast-check.ts',
      'libs/contracts/src/create-entry.dto.ts',
    ],
    specs: [
      'apps/api/src/message/entries-validation.pipe.spec.ts',
      'libs/dto-fast-check/src/dto-fast-check.spec.ts',
      'libs/contracts/src/create-entry.dto.spec.ts',
    ],
  },
  'api-ingest': {
    files: ['apps/api/src/message/ingest.service.ts'],
    specs: ['apps/api/src/message/ingest.service.spec.ts', 'apps/api/src/message/ingest.service.keyed.spec.ts'],
  },
  sharding: {
    files: ['libs/sharding/src/shard.ts', 'libs/sharding/src/queue-names.ts'],
    specs: ['libs/sharding/src/shard.spec.ts', 'libs/sharding/src/queue-names.spec.ts'],
  },
  contracts: {
    files: ['libs/contracts/src/entry.wire.ts'],
    specs: ['libs/contracts/src/entry.wire.spec.ts'],
  },
  rfc3339: {
    files: ['libs/rfc3339/src/rfc3339.ts'],
    specs: ['libs/rfc3339/src/rfc3339.spec.ts'],
  },
  'file-sink': {
    files: [
      'apps/consumer/src/file-sink/file-sink.service.ts',
      'libs/durable-fs/src/directory-syncer.ts',
      'libs/durable-fs/src/fresh-run.ts',
    ],
    specs: ['apps/consumer/src/file-sink/file-sink.service.spec.ts', 'libs/durable-fs/src/directory-syncer.spec.ts'],
  },
  'worker-pool': {
    files: ['apps/consumer/src/worker-pool/worker-pool.ts'],
    specs: ['apps/consumer/src/worker-pool/worker-pool.spec.ts'],
    // Every case runs on the fake clock in under 50 ms; about 50 mutants leave an add() or an
    // onIdle() pending forever.
    testTimeout: 1_000,
  },
  batch: {
    files: ['apps/consumer/src/batch/batch-buffer.ts'],
    specs: ['apps/consumer/src/batch/batch-buffer.spec.ts', 'apps/consumer/src/batch/batch-buffer.options.spec.ts'],
  },
  shard: {
    files: ['apps/consumer/src/shard/shard-runtime.ts', 'apps/consumer/src/shard/shard-channel.ts'],
    specs: ['apps/consumer/src/shard/shard-runtime.spec.ts', 'apps/consumer/src/shard/shard-channel.spec.ts'],
  },
};

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
const config = {
  packageManager: 'npm',
  testRunner: 'jest',
  jest: {
    projectType: 'custom',
    // The unit tests of `npm run test:unit`, with fast-check capped: see that file.
    configFile: 'tools/mutation/jest.config.ts',
  },
  // What a bare `npx stryker run` mutates (judged by every unit spec); run.mjs narrows it per group.
  mutate: Object.values(groups).flatMap(({ files }) => files),
  // Each mutant runs only the tests that reach it.
  coverageAnalysis: 'perTest',
  // tsconfig's isolatedModules makes ts-jest transpile only; a mutant that does not compile
  // fails its tests (counted as killed), cheaper on 2 cores than the TypeScript checker.
  concurrency: 2,
  // A mutant run is cut off after timeoutFactor × its tests' time in the initial run, plus this,
  // plus that run's overhead (Jest's start, ts-jest compiling every file: seconds already), and
  // counted as a Timeout (detected). Stryker's 5 s default came on top of that overhead for each
  // of the tens of mutants that hang a test; no unit test waits on real time for more than 1 s.
  timeoutMS: 2_000,
  // Reuse the results of mutants whose code and tests did not change since the last run;
  // `npm run test:mutation -- --force` runs every mutant again. The file stays out of git: it
  // changes with every run and every branch, and a full run takes minutes.
  incremental: true,
  incrementalFile: 'reports/mutation/stryker-incremental.json',
  reporters: ['clear-text', 'html', 'progress'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  thresholds: { high: 90, low: 80, break: null },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};

export default config;
