/**
 * The generators of the POST /message fuzz cases (post-message.fuzz.fault-spec.ts): entries and
 * whole bodies, each with what the contract says of it.
 */
import fc from 'fast-check';

export type Verdict = 'valid' | 'invalid' | 'unsure';

/**
 * One entry of a request body and what the contract says of it: the entry as a value, or as JSON
 * text when no value can hold it (nesting deeper than JSON.stringify can recurse, a number JSON
 * cannot write back).
 */
export interface Candidate {
  entry?: unknown;
  text?: string;
  verdict: Verdict;
  why: string;
}

/** The body of a batch of candidates, as sent. */
export function batchText(batch: Candidate[]): string {
  return `[${batch.map((c) => c.text ?? JSON.stringify(c.entry)).join(',')}]`;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');
const isLeap = (year: number) => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
const daysIn = (year: number, month: number) =>
  [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];

interface Parts {
  year: string;
  month: string;
  day: string;
  separator: string;
  hour: string;
  minute: string;
  second: string;
  fraction: string;
  zone: string;
}

const format = (p: Parts) =>
  `${p.year}-${p.month}-${p.day}${p.separator}${p.hour}:${p.minute}:${p.second}${p.fraction}${p.zone}`;

/** The fields of a valid RFC 3339 date-time: any real date of years 0000-9999, `T`/`t`, `Z`/`z` or an offset. */
const validParts: fc.Arbitrary<Parts & { y: number; m: number }> = fc
  .record({
    y: fc.oneof(fc.integer({ min: 1900, max: 2100 }), fc.integer({ min: 0, max: 9999 })),
    m: fc.integer({ min: 1, max: 12 }),
    d: fc.integer({ min: 1, max: 31 }),
    hour: fc.integer({ min: 0, max: 23 }),
    minute: fc.integer({ min: 0, max: 59 }),
    second: fc.integer({ min: 0, max: 59 }),
    fraction: fc.oneof(fc.constant(''), fc.stringMatching(/^\.\d{1,9}$/)),
    separator: fc.constantFrom('T', 't'),
    zone: fc.oneof(
      fc.constantFrom('Z', 'z'),
      fc
        .tuple(fc.constantFrom('+', '-'), fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }))
        .map(([sign, h, m]) => `${sign}${pad(h)}:${pad(m)}`),
    ),
  })
  .map(({ y, m, d, hour, minute, second, fraction, separator, zone }) => ({
    y,
    m,
    year: pad(y, 4),
    month: pad(m),
    day: pad(Math.min(d, daysIn(y, m))),
    separator,
    hour: pad(hour),
    minute: pad(minute),
    second: pad(second),
    fraction,
    zone,
  }));

const validTimestamp = validParts.map(format);

/** `value` as the contract allows it: absent, null, or any string (any Unicode). */
const validValue: fc.Arbitrary<{ value?: string | null }> = fc.oneof(
  fc.constant({}),
  fc.constant({ value: null }),
  fc.string({ maxLength: 40 }).map((value) => ({ value })),
  fc.string({ unit: 'grapheme', maxLength: 40 }).map((value) => ({ value })),
  fc.string({ unit: 'binary', maxLength: 40 }).map((value) => ({ value })),
  // Lone surrogates: JSON.stringify escapes them (\ud800), and they are strings all the same.
  fc.constantFrom('\uD800', 'a\uDFFFb', '\uDBFF\uDBFF').map((value) => ({ value })),
);

export const validEntry: fc.Arbitrary<Candidate> = fc
  .tuple(validTimestamp, validValue)
  .map(([timestamp, value]) => ({ entry: { timestamp, ...value }, verdict: 'valid' as const, why: 'valid' }));

/** A valid timestamp with one thing changed, and whether the result is still valid. */
const mutatedTimestamp: fc.Arbitrary<{ timestamp: string; verdict: Verdict; why: string }> = fc
  .tuple(
    validParts,
    fc.constantFrom(
      'feb30',
      'feb29 in a common year',
      'feb29 in a leap year',
      'day 31 of a 30-day month',
      'month 00',
      'month 13',
      'day 00',
      'hour 24',
      'minute 60',
      'second 60',
      'no zone',
      'space separator',
      'offset hour 24',
      'offset minute 60',
      'offset without colon',
      'five-digit year',
      'two-digit year',
      'dot without digits',
      'leading space',
      'trailing newline',
      'fullwidth digit',
      'zero-width space',
      'comma fraction',
    ),
  )
  .map(([p, how]) => {
    const invalid = (parts: Partial<Parts>) => ({
      timestamp: format({ ...p, ...parts }),
      verdict: 'invalid' as const,
      why: how,
    });
    const text = format(p);
    switch (how) {
      case 'feb30':
        return invalid({ month: '02', day: p.y % 2 ? '30' : '31' });
      case 'feb29 in a common year':
        return invalid({ year: pad([2019, 1900, 2100, 2023][p.y % 4], 4), month: '02', day: '29' });
      case 'feb29 in a leap year':
        return {
          timestamp: format({ ...p, year: pad([2020, 2000, 2024, 1996][p.y % 4], 4), month: '02', day: '29' }),
          verdict: 'valid',
          why: how,
        };
      case 'day 31 of a 30-day month':
        return invalid({ month: pad([4, 6, 9, 11][p.y % 4]), day: '31' });
      case 'month 00':
        return invalid({ month: '00' });
      case 'month 13':
        return invalid({ month: '13' });
      case 'day 00':
        return invalid({ day: '00' });
      case 'hour 24':
        return invalid({ hour: '24' });
      case 'minute 60':
        return invalid({ minute: '60' });
      case 'second 60':
        // A leap second: RFC 3339 allows it where one happened; the contract does not say. Either answer is fine, never a 5xx.
        return { timestamp: format({ ...p, second: '60' }), verdict: 'unsure', why: how };
      case 'no zone':
        return invalid({ zone: '' });
      case 'space separator':
        return invalid({ separator: ' ' });
      case 'offset hour 24':
        return invalid({ zone: '+24:00' });
      case 'offset minute 60':
        return invalid({ zone: '-05:60' });
      case 'offset without colon':
        return invalid({ zone: '+0530' });
      case 'five-digit year':
        return invalid({ year: `1${p.year}` });
      case 'two-digit year':
        return invalid({ year: p.year.slice(2) });
      case 'dot without digits':
        return invalid({ fraction: '.' });
      case 'leading space':
        return { timestamp: ` ${text}`, verdict: 'invalid', why: how };
      case 'trailing newline':
        return { timestamp: `${text}\n`, verdict: 'invalid', why: how };
      case 'fullwidth digit':
        return invalid({ year: `\uFF12${p.year.slice(1)}` });
      case 'zero-width space':
        return { timestamp: `${text}\u200B`, verdict: 'invalid', why: how };
      default:
        return invalid({ fraction: ',5' });
    }
  });

const huge = fc
  .tuple(fc.integer({ min: 10_000, max: 1_200_000 }), fc.constantFrom('x', 'é', '€', '😀'))
  .map(([length, unit]) => unit.repeat(Math.ceil(length / unit.length)));

const notAString = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant([]),
  fc.constant({}),
  fc.array(fc.array(fc.array(fc.string({ maxLength: 3 }), { maxLength: 3 }), { maxLength: 3 })),
);

const reservedKeys = fc.constantFrom(
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'id',
  'Timestamp',
  'VALUE',
  '',
  ' timestamp',
);

/** A valid entry with one thing changed: the timestamp, the value, the keys, or the entry's very type. */
export const mutatedEntry: fc.Arbitrary<Candidate> = fc.oneof(
  fc
    .tuple(mutatedTimestamp, validValue)
    .map(([{ timestamp, verdict, why }, value]) => ({ entry: { timestamp, ...value }, verdict, why })),
  fc.tuple(notAString, validValue).map(([timestamp, value]) => ({
    entry: { timestamp, ...value },
    verdict: 'invalid' as const,
    why: 'timestamp not a string',
  })),
  fc.constant({ entry: { timestamp: null }, verdict: 'invalid' as const, why: 'timestamp null' }),
  validValue.map((value) => ({ entry: { ...value }, verdict: 'invalid' as const, why: 'no timestamp' })),
  fc.tuple(validTimestamp, notAString).map(([timestamp, value]) => ({
    entry: { timestamp, value },
    verdict: 'invalid' as const,
    why: 'value not a string',
  })),
  fc
    .tuple(validTimestamp, huge)
    .map(([timestamp, value]) => ({ entry: { timestamp, value }, verdict: 'valid' as const, why: 'huge value' })),
  fc
    .tuple(
      validEntry,
      fc.oneof(reservedKeys, fc.string({ minLength: 1, maxLength: 12 })),
      fc.jsonValue({ maxDepth: 2 }),
    )
    .filter(([, key]) => key !== 'timestamp' && key !== 'value')
    // Object.fromEntries defines `__proto__` as an own key, so JSON.stringify sends it as written.
    .map(([{ entry }, key, extra]) => ({
      entry: Object.fromEntries([...Object.entries(entry as object), [key, extra]]),
      verdict: 'invalid' as const,
      why: 'extra key',
    })),
  validEntry.map(({ entry }) => ({ entry: [entry], verdict: 'invalid' as const, why: 'entry wrapped in an array' })),
  fc
    .oneof(fc.string(), fc.integer(), fc.constant(null), fc.boolean())
    .map((entry) => ({ entry, verdict: 'invalid' as const, why: 'entry not an object' })),
);

/** A batch of near-valid entries; sometimes more than `maxEntries`. */
export const nearValidBatch = (maxEntries: number): fc.Arbitrary<Candidate[]> =>
  fc.oneof(
    {
      weight: 8,
      arbitrary: fc.array(fc.oneof({ weight: 3, arbitrary: validEntry }, { weight: 1, arbitrary: mutatedEntry }), {
        minLength: 1,
        maxLength: 12,
      }),
    },
    { weight: 1, arbitrary: fc.array(validEntry, { minLength: maxEntries + 1, maxLength: maxEntries + 20 }) },
  );

export interface Limits {
  maxEntries: number;
  maxBodyBytes: number;
}

/** What the contract says of a body: 413 first (size, count), then 400 for any invalid entry, else 201. */
export function expectedStatuses(batch: Candidate[], bytes: number, limits: Limits): number[] {
  if (bytes > limits.maxBodyBytes || batch.length > limits.maxEntries) return [413];
  if (batch.some((c) => c.verdict === 'invalid')) return [400];
  if (batch.some((c) => c.verdict === 'unsure')) return [201, 400];
  return [201];
}

// ------------------------------------------------ shapes that hunt for unbounded work (issue 8)

const deepArray = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const deepObject = (depth: number) => '{"a":'.repeat(depth) + 'null' + '}'.repeat(depth);

/** JSON text nested up to 100,000 levels (about 200 to 500 KB): deeper than JSON.stringify or class-transformer recurse. */
const deepText = fc
  .tuple(fc.oneof(fc.integer({ min: 2, max: 100 }), fc.integer({ min: 1_000, max: 100_000 })), fc.boolean())
  .map(([depth, array]) => (array ? deepArray(depth) : deepObject(depth)));

/** Every name on Object.prototype, and `prototype`. */
const prototypeKeys = fc.constantFrom(...Object.getOwnPropertyNames(Object.prototype), 'prototype');

/** Numbers where strings go, some of which JSON.parse turns into Infinity, -0 or a rounded integer. */
const numberText = fc.oneof(
  fc.double().map((n) => JSON.stringify(n)),
  fc.constantFrom(
    '1e999',
    '-1e999',
    '-0',
    '0e0',
    '1570867853',
    '1570867853.52',
    '123456789012345678901234567890',
    '5e-324',
  ),
);

const text = (json: string, why: string): Candidate => ({ text: json, verdict: 'invalid', why });
const ts = (timestamp: string) => `"timestamp":${JSON.stringify(timestamp)}`;

/** Entries of the shapes that found nothing before issue 8: depth, key count, prototype keys, long strings, numbers. */
export const hostileEntry: fc.Arbitrary<Candidate> = fc.oneof(
  fc.tuple(validTimestamp, deepText).map(([t, deep]) => text(`{${ts(t)},"value":${deep}}`, 'value nested deep')),
  deepText.map((deep) => text(`{"timestamp":${deep}}`, 'timestamp nested deep')),
  fc
    .tuple(validTimestamp, fc.oneof(prototypeKeys, fc.constant('x')), deepText)
    .map(([t, key, deep]) => text(`{${ts(t)},${JSON.stringify(key)}:${deep}}`, 'extra key nested deep')),
  deepText.map((deep) => text(deep, 'entry nested deep')),
  fc
    .tuple(validTimestamp, fc.integer({ min: 100, max: 100_000 }))
    .map(([t, count]) =>
      text(`{${ts(t)},${Array.from({ length: count }, (_, i) => `"k${i.toString(36)}":0`).join(',')}}`, 'many keys'),
    ),
  fc
    .tuple(validTimestamp, prototypeKeys, fc.jsonValue({ maxDepth: 2 }))
    .map(([t, key, value]) => text(`{${ts(t)},${JSON.stringify(key)}:${JSON.stringify(value)}}`, 'prototype key')),
  fc
    .tuple(validTimestamp, fc.integer({ min: 1_000, max: 300_000 }))
    .map(([t, length]) => text(`{${ts(t + 'x'.repeat(length))}}`, 'long timestamp')),
  fc
    .tuple(validTimestamp, fc.integer({ min: 1_000, max: 300_000 }))
    .map(([t, length]) => text(`{${ts(t)},"${'k'.repeat(length)}":1}`, 'long key')),
  numberText.map((n) => text(`{"timestamp":${n}}`, 'number timestamp')),
  fc.tuple(validTimestamp, numberText).map(([t, n]) => text(`{${ts(t)},"value":${n}}`, 'number value')),
);

/** A few valid entries around hostile ones. */
export const hostileBatch: fc.Arbitrary<Candidate[]> = fc.array(
  fc.oneof({ weight: 1, arbitrary: validEntry }, { weight: 2, arbitrary: hostileEntry }),
  { minLength: 1, maxLength: 4 },
);

/** A whole body nested deep: never a batch, so always a 400. */
export const deepBody: fc.Arbitrary<string> = deepText;
