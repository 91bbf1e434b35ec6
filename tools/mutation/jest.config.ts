import type { Config } from 'jest';
import path from 'node:path';
import base from '../../jest.config';

/**
 * The Jest configuration Stryker runs: the unit tests of `npm run test:unit` (*.spec.ts under
 * apps/ and libs/, no broker needed), with fast-check capped (see fast-check.capped.js).
 */
const config: Config = {
  ...base,
  rootDir: path.resolve(__dirname, '../..'),
  roots: ['<rootDir>/apps', '<rootDir>/libs'],
  testRegex: String.raw`\.spec\.ts$`,
  moduleNameMapper: { ...base.moduleNameMapper, '^fast-check$': '<rootDir>/tools/mutation/fast-check.capped.js' },
};

export default config;
