import fc from 'fast-check';
import { isRfc3339DateTime, parseRfc3339Seconds } from './rfc3339';

const pad = (value: number, width: number): string => String(value).padStart(width, '0');

const YEAR_0000 = -62_167_219_200_000;
const YEAR_10000 = 253_402_300_800_000;

/** Any instant of years 0000 to 9999, to be written with a random offset, fraction and case. */
const rfc3339Instant = fc.record({
  ms: fc.integer({ min: YEAR_0000, max: YEAR_10000 - 1 }),
  offsetMinutes: fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }),
  fraction: fc.stringMatching(/^\d{0,9}$/),
  lowerCase: fc.boolean(),
});

/** The instant as RFC 3339 text in the given offset, through the Date object; null outside 0000-9999. */
function format(ms: number, offsetMinutes: number, fraction: string, lowerCase: boolean): string | null {
  const local = new Date(Math.floor(ms / 1000) * 1000 + offsetMinutes * 60_000);
  const year = local.getUTCFullYear();
  if (year < 0 || year > 9999) return null;
  const date = `${pad(year, 4)}-${pad(local.getUTCMonth() + 1, 2)}-${pad(local.getUTCDate(), 2)}`;
  const time = `${pad(local.getUTCHours(), 2)}:${pad(local.getUTCMinutes(), 2)}:${pad(local.getUTCSeconds(), 2)}`;
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  const zone = offsetMinutes === 0 ? 'Z' : `${sign}${pad(Math.floor(abs / 60), 2)}:${pad(abs % 60, 2)}`;
  const text = `${date}T${time}${fraction === '' ? '' : `.${fraction}`}${zone}`;
  return lowerCase ? text.toLowerCase() : text;
}

describe('parseRfc3339Seconds against the Date object', () => {
  it('agrees on every instant of years 0000 to 9999, whatever the offset and fraction', () => {
    fc.assert(
      fc.property(rfc3339Instant, ({ ms, offsetMinutes, fraction, lowerCase }) => {
        const text = format(ms, offsetMinutes, fraction, lowerCase);
        fc.pre(text !== null);
        expect(parseRfc3339Seconds(text)).toBe(Math.floor(ms / 1000));
      }),
      { numRuns: 5_000 },
    );
  });

  it('accepts a calendar date exactly when the Date object keeps it as written', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 9999 }),
        fc.integer({ min: 0, max: 13 }),
        fc.integer({ min: 0, max: 32 }),
        (year, month, day) => {
          const text = `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T00:00:00Z`;
          const date = new Date(0);
          date.setUTCFullYear(year, month - 1, day);
          const real = month >= 1 && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
          expect(isRfc3339DateTime(text)).toBe(real);
        },
      ),
      { numRuns: 5_000 },
    );
  });
});
