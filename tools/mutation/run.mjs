// @ts-check
// `npm run test:mutation [-- GROUP ...] [--force]`: Stryker once per group of stryker.config.mjs
// (every group unless some are named), each group's files judged by the group's own specs; then
// the score of each group and its surviving mutants. Reports: reports/mutation/<group>.html.
import { Stryker } from '@stryker-mutator/core';
import { groups } from '../../stryker.config.mjs';

const args = process.argv.slice(2);
const force = args.includes('--force');
const named = args.filter((arg) => !arg.startsWith('--'));
for (const name of named) {
  if (!(name in groups)) {
    console.error(`no mutation group ${name}; the groups: ${Object.keys(groups).join(', ')}`);
    process.exit(1);
  }
}
const selected = named.length > 0 ? named : Object.keys(groups);

const DETECTED = new Set(['Killed', 'Timeout']);
const UNDETECTED = new Set(['Survived', 'NoCoverage']);
const escape = (/** @type {string} */ text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const rows = [];
const survivors = [];
const all = { detected: 0, undetected: 0 };
const score = (/** @type {{ detected: number, undetected: number }} */ { detected, undetected }) =>
  detected + undetected === 0 ? 'n/a' : `${((100 * detected) / (detected + undetected)).toFixed(1)} %`;

for (const name of selected) {
  const { files, specs, testTimeout } = groups[name];
  const started = Date.now();
  const results = await new Stryker({
    mutate: files,
    force,
    jest: { config: { testRegex: `/(${specs.map(escape).join('|')})$`, ...(testTimeout && { testTimeout }) } },
    incrementalFile: `reports/mutation/${name}.incremental.json`,
    htmlReporter: { fileName: `reports/mutation/${name}.html` },
  }).runMutationTest();
  const tally = { detected: 0, undetected: 0 };
  for (const mutant of results) {
    if (DETECTED.has(mutant.status)) tally.detected++;
    if (UNDETECTED.has(mutant.status)) {
      tally.undetected++;
      const { line, column } = mutant.location.start;
      survivors.push(
        `${mutant.fileName}:${line}:${column} ${mutant.status} ${mutant.mutatorName}: ${mutant.replacement ?? ''}`,
      );
    }
  }
  all.detected += tally.detected;
  all.undetected += tally.undetected;
  const seconds = Math.round((Date.now() - started) / 1000);
  rows.push(`| ${name} | ${score(tally)} | ${tally.detected} | ${tally.undetected} | ${seconds} s |`);
}

console.log(
  [
    '',
    'Mutation score per group (killed counts timeouts; survived counts mutants no test reached):',
    '| group | score | killed | survived | time |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    `| all | ${score(all)} | ${all.detected} | ${all.undetected} | |`,
    '',
    survivors.length === 0 ? 'No surviving mutant.' : `Surviving mutants:\n${survivors.join('\n')}`,
  ].join('\n'),
);
