import type { Config } from 'jest';
import { pathsToModuleNameMapper } from 'ts-jest';
import { compilerOptions } from './tsconfig.json';

const config: Config = {
  rootDir: '.',
  moduleFileExtensions: ['ts', 'js', 'json'],
  testEnvironment: 'node',
  roots: ['<rootDir>/apps', '<rootDir>/libs', '<rootDir>/tools', '<rootDir>/test'],
  testRegex: String.raw`\.(spec|e2e-spec)\.ts$`,
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }] },
  // Path aliases come from tsconfig.json, never copied by hand.
  moduleNameMapper: {
    ...pathsToModuleNameMapper(compilerOptions.paths, { prefix: '<rootDir>/' }),
    // ESM-only below it, which Jest cannot load on Node 20; see the stub for what that costs.
    '^@fastify/static$': '<rootDir>/libs/testing/stubs/fastify-static.js',
  },
  collectCoverageFrom: ['apps/*/src/**/*.ts', 'libs/*/src/**/*.ts'],
  coverageDirectory: 'coverage',
  // End-to-end tests start real processes against the real broker; give them room, and more than
  // the test kit's longest default wait (60 s, waitForAllWritten), so that a stuck test fails on
  // the wait that names what it waited for rather than on this anonymous timeout.
  testTimeout: 90_000,
};

export default config;
