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

describe('isRfc3339DateTime', () => {
  it('is true only for a string holding a valid date-time', () => {
    expect(isRfc3339DateTime('2019-10-12T08:10:53Z')).toBe(true);
    expect(isRfc3339DateTime('2019-02-29T00:00:00Z')).toBe(false);
  });

  it.each([
    ['an array holding one', ['2019-10-12T08:10:53Z']],
    ['a String object', new String('2019-10-12T08:10:53Z')],
    ['an object that prints as one', { toString: () => '2019-10-12T08:10:53Z' }],
    ['a number', 1570867853],
    ['null', null],
    ['undefined', undefined],
  ])('is false, without throwing, for %s', (_case, value) => {
    expect(isRfc3339DateTime(value)).toBe(false);
  });
});

describe('parseRfc3339Seconds', () => {
  it.each([
    ['1970-01-01T00:00:00Z', 0],
    ['1970-01-01T00:00:01.999Z', 1],
    ['2019-10-12T08:10:53.52Z', 1570867853],
    ['2019-10-12t08:10:53.52z', 1570867853],
    ['2019-10-12T10:10:53+02:00', 1570867853],
    ['2019-10-12T03:40:53.000000001-04:30', 1570867853],
    ['1969-12-31T23:59:59Z', -1],
    ['1969-12-31T23:59:59.5Z', -1],
    ['1969-12-31T23:59:58.999Z', -2],
    ['0001-01-01T00:00:00Z', -62135596800],
    ['0099-12-31T23:59:59Z', -59011459201],
    ['9999-12-31T23:59:59Z', 253402300799],
    ['2020-02-29T00:00:00Z', 1582934400],
    ['2000-02-29T12:00:00-00:00', 951825600],
  ])('%s is %d seconds', (text, seconds) => {
    expect(parseRfc3339Seconds(text)).toBe(seconds);
  });

  it.each([
    '2019-10-12 08:10:53Z',
    '2019-10-12T08:10:53',
    '2019-10-12',
    '2019-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2019-04-31T00:00:00Z',
    '2019-13-01T00:00:00Z',
    '2019-00-01T00:00:00Z',
    '2019-10-00T00:00:00Z',
    '2019-10-12T24:00:00Z',
    '2019-10-12T23:60:00Z',
    '2019-10-12T23:59:60Z',
    '2019-10-12T08:10:53.Z',
    '2019-10-12T08:10:53+0200',
    '2019-10-12T08:10:53+24:00',
    '2019-10-12T08:10:53+02:60',
    '19-10-12T08:10:53Z',
    '+2019-10-12T08:10:53Z',
    ' 2019-10-12T08:10:53Z',
    '2019-10-12T08:10:53Z ',
    '2019-10-12T08:10:53ZZ',
    '2019-10-12T08:10:53Z2019-10-12T08:10:53Z',
    '',
  ])('rejects %j', (text) => {
    expect(parseRfc3339Seconds(text)).toBeNull();
  });
});
