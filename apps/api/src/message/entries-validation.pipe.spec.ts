import { BadRequestException, HttpException, HttpStatus, PayloadTooLargeException } from '@nestjs/common';
import { CreateEntryDto } from '@app/contracts';
import { EntriesValidationPipe, MAX_FAULT_MESSAGES } from './entries-validation.pipe';

const MAX_ENTRIES = 5;
const VALID = '2019-10-12T08:10:53.52Z';
const NOT_A_BATCH = 'body must be a non-empty JSON array of entries';
const BAD_TIMESTAMP = 'timestamp must be an RFC 3339 date-time with a time zone';

const pipe = new EntriesValidationPipe({ maxEntries: MAX_ENTRIES } as never);

/** The HTTP status and the `message` of what the pipe throws for `body`. */
function rejection(body: unknown): { status: number; message: unknown } {
  try {
    pipe.transform(body);
  } catch (error) {
    if (!(error instanceof HttpException)) throw error;
    return { status: error.getStatus(), message: (error.getResponse() as { message: unknown }).message };
  }
  throw new Error(`the pipe accepted ${JSON.stringify(body)}`);
}

describe('EntriesValidationPipe', () => {
  describe('accepts', () => {
    it.each([
      ['a timestamp with Z', [{ timestamp: VALID }]],
      ['a value', [{ timestamp: VALID, value: 'hello' }]],
      ['an empty value', [{ timestamp: VALID, value: '' }]],
      ['value null, meaning absent', [{ timestamp: VALID, value: null }]],
      ['lower-case t and z', [{ timestamp: '2019-10-12t08:10:53z' }]],
      ['an offset and nanoseconds', [{ timestamp: '2019-10-12T03:40:53.000000001-04:30' }]],
      ['a date before 1970', [{ timestamp: '1969-12-31T23:59:59.5Z' }]],
      ['a leap day', [{ timestamp: '2020-02-29T00:00:00+00:00' }]],
      ['exactly MAX_ENTRIES entries', Array.from({ length: MAX_ENTRIES }, () => ({ timestamp: VALID }))],
    ])('%s', (_case, body) => {
      const entries = pipe.transform(body);
      expect(entries).toHaveLength(body.length);
      entries.forEach((entry, index) => {
        expect(entry).toBeInstanceOf(CreateEntryDto);
        expect(entry.timestamp).toBe(body[index].timestamp);
        expect(entry.value ?? null).toBe((body[index] as { value?: string | null }).value ?? null);
      });
    });
  });

  describe('answers 400 for a body that is not a batch', () => {
    it.each([
      ['an object', { timestamp: VALID }],
      ['a string', 'entries'],
      ['a number', 42],
      ['null', null],
      ['undefined (no body)', undefined],
      ['an empty array', []],
    ])('%s', (_case, body) => {
      expect(rejection(body)).toEqual({ status: HttpStatus.BAD_REQUEST, message: NOT_A_BATCH });
    });
  });

  describe('answers 400 naming the entry index and the field', () => {
    it.each([
      ['a number entry', 7, '0 must be an object with a timestamp'],
      ['a string entry', VALID, '0 must be an object with a timestamp'],
      ['a null entry', null, '0 must be an object with a timestamp'],
      ['an array entry', [VALID], '0 must be an object with a timestamp'],
      ['no timestamp', {}, `0.${BAD_TIMESTAMP}`],
      ['only a value', { value: 'x' }, `0.${BAD_TIMESTAMP}`],
      ['a null timestamp', { timestamp: null }, `0.${BAD_TIMESTAMP}`],
      ['a numeric timestamp', { timestamp: 1570867853 }, `0.${BAD_TIMESTAMP}`],
      ['an empty timestamp', { timestamp: '' }, `0.${BAD_TIMESTAMP}`],
      ['a timestamp that is no date', { timestamp: 'yesterday' }, `0.${BAD_TIMESTAMP}`],
      ['a space instead of T', { timestamp: '2019-10-12 08:10:53Z' }, `0.${BAD_TIMESTAMP}`],
      ['no time zone', { timestamp: '2019-10-12T08:10:53' }, `0.${BAD_TIMESTAMP}`],
      ['a date only', { timestamp: '2019-10-12' }, `0.${BAD_TIMESTAMP}`],
      ['an offset without colon', { timestamp: '2019-10-12T08:10:53+0200' }, `0.${BAD_TIMESTAMP}`],
      ['February 29 of a common year', { timestamp: '2019-02-29T00:00:00Z' }, `0.${BAD_TIMESTAMP}`],
      ['April 31', { timestamp: '2019-04-31T00:00:00Z' }, `0.${BAD_TIMESTAMP}`],
      ['month 13', { timestamp: '2019-13-01T00:00:00Z' }, `0.${BAD_TIMESTAMP}`],
      ['day 0', { timestamp: '2019-10-00T00:00:00Z' }, `0.${BAD_TIMESTAMP}`],
      ['hour 24', { timestamp: '2019-10-12T24:00:00Z' }, `0.${BAD_TIMESTAMP}`],
      ['a leap second', { timestamp: '2019-10-12T23:59:60Z' }, `0.${BAD_TIMESTAMP}`],
      ['a numeric value', { timestamp: VALID, value: 5 }, '0.value must be a string'],
      ['a boolean value', { timestamp: VALID, value: true }, '0.value must be a string'],
      ['an object value', { timestamp: VALID, value: { text: 'x' } }, '0.value must be a string'],
      ['an array value', { timestamp: VALID, value: ['x'] }, '0.value must be a string'],
      ['an extra property', { timestamp: VALID, id: 'mine' }, '0.property id should not exist'],
      ['a property named like a method', { timestamp: VALID, toString: 'x' }, '0.property toString should not exist'],
      [
        'a property named constructor',
        { timestamp: VALID, constructor: 'x' },
        '0.property constructor should not exist',
      ],
    ])('%s', (_case, entry, message) => {
      expect(rejection([entry])).toEqual({ status: HttpStatus.BAD_REQUEST, message: [message] });
    });

    it('lists every fault of every entry, in entry order', () => {
      const body = [
        { timestamp: VALID },
        { timestamp: 'soon', value: 3 },
        'not an entry',
        { timestamp: VALID, value: 'fine' },
        { timestamp: VALID, colour: 'red' },
      ];
      expect(rejection(body)).toEqual({
        status: HttpStatus.BAD_REQUEST,
        message: [
          `1.${BAD_TIMESTAMP}`,
          '1.value must be a string',
          '2 must be an object with a timestamp',
          '4.property colour should not exist',
        ],
      });
    });

    it('throws a BadRequestException, which Nest turns into its usual error shape', () => {
      expect(() => pipe.transform([{}])).toThrow(BadRequestException);
    });
  });

  describe('hostile shapes: bounded work, a 400 naming the entry, never a crash', () => {
    const DEPTH = 100_000;
    const deep = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);

    it('a value nested 100,000 levels deep (class-transformer recursed on it until a RangeError)', () => {
      const body: unknown = JSON.parse(`[{"timestamp":"${VALID}"},{"timestamp":"${VALID}","value":${deep(DEPTH)}}]`);
      expect(rejection(body)).toEqual({ status: HttpStatus.BAD_REQUEST, message: ['1.value must be a string'] });
    });

    it('a timestamp and an extra property nested as deep', () => {
      const body: unknown = JSON.parse(`[{"timestamp":${deep(DEPTH)},"extra":{"a":${deep(DEPTH)}}}]`);
      expect(rejection(body)).toEqual({
        status: HttpStatus.BAD_REQUEST,
        message: ['0.property extra should not exist', `0.${BAD_TIMESTAMP}`],
      });
    });

    it.each(['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__'])(
      'a key %s, as JSON.parse makes it, named as an extra property; no prototype changes',
      (key) => {
        const [entry] = JSON.parse(
          `[{"timestamp":"${VALID}","${key}":{"polluted":true,"prototype":{"polluted":true}}}]`,
        ) as object[];
        expect(Object.keys(entry)).toContain(key);
        expect(rejection([entry])).toEqual({
          status: HttpStatus.BAD_REQUEST,
          message: [`0.property ${key} should not exist`],
        });
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
        expect((new CreateEntryDto() as unknown as Record<string, unknown>).polluted).toBeUndefined();
        expect(Object.getPrototypeOf(new CreateEntryDto())).toBe(CreateEntryDto.prototype);
      },
    );

    it('an accepted entry is a CreateEntryDto with its own two properties and nothing else', () => {
      const [entry, bare] = pipe.transform(
        JSON.parse(`[{"timestamp":"${VALID}","value":"v"},{"timestamp":"${VALID}"}]`),
      );
      expect(Object.getPrototypeOf(entry)).toBe(CreateEntryDto.prototype);
      expect(Object.keys(entry).sort()).toEqual(['timestamp', 'value']);
      expect(bare).toEqual(Object.assign(new CreateEntryDto(), { timestamp: VALID }));
    });

    it('shows a key of 64 characters whole and cuts a longer one short', () => {
      const [at64, at65] = ['k'.repeat(64), 'k'.repeat(65)];
      expect(rejection([{ timestamp: VALID, [at64]: 1, [at65]: 1 }])).toEqual({
        status: HttpStatus.BAD_REQUEST,
        message: [`0.property ${at64} should not exist`, `0.property ${at64}... (65 characters) should not exist`],
      });
    });

    it(`lists at most ${MAX_FAULT_MESSAGES} messages, then how many more there are`, () => {
      const wide = new EntriesValidationPipe({ maxEntries: 10_000 } as never);
      const body = Array.from({ length: 10_000 }, () => ({ timestamp: 'no', value: 1 }));
      const { message } = (() => {
        try {
          wide.transform(body);
        } catch (error) {
          return (error as HttpException).getResponse() as { message: string[] };
        }
        throw new Error('accepted');
      })();
      expect(message).toHaveLength(MAX_FAULT_MESSAGES + 1);
      expect(message.slice(0, 2)).toEqual([`0.${BAD_TIMESTAMP}`, '0.value must be a string']);
      expect(message[MAX_FAULT_MESSAGES - 1]).toBe('49.value must be a string');
      expect(message[MAX_FAULT_MESSAGES]).toBe(`and ${2 * 10_000 - MAX_FAULT_MESSAGES} more`);
    });

    it('counts every extra key of an entry with 100,000 keys, listing the first ones, long names cut short', () => {
      const entry: Record<string, unknown> = { timestamp: VALID, ['k'.repeat(1_000)]: 1 };
      for (let i = 0; i < 100_000; i++) entry[`k${i}`] = i;
      const { message } = rejection([{ timestamp: VALID }, entry]) as { message: string[] };
      expect(message).toHaveLength(MAX_FAULT_MESSAGES + 1);
      expect(message[0]).toBe(`1.property ${'k'.repeat(64)}... (1000 characters) should not exist`);
      expect(message[1]).toBe('1.property k0 should not exist');
      expect(message[MAX_FAULT_MESSAGES]).toBe(`and ${100_001 - MAX_FAULT_MESSAGES} more`);
    });
  });

  describe('answers 413 for more than MAX_ENTRIES entries', () => {
    it('before looking at the entries', () => {
      const body = Array.from({ length: MAX_ENTRIES + 1 }, () => ({ timestamp: 'not even a timestamp' }));
      expect(() => pipe.transform(body)).toThrow(PayloadTooLargeException);
      expect(rejection(body)).toEqual({
        status: HttpStatus.PAYLOAD_TOO_LARGE,
        message: `body holds ${MAX_ENTRIES + 1} entries; at most ${MAX_ENTRIES} are allowed per request`,
      });
    });
  });

  describe('without the compiled check (a DTO rule it does not mirror), class-validator judges every entry', () => {
    let fallback: EntriesValidationPipe;
    let warn: jest.SpyInstance;

    beforeAll(() => {
      jest.isolateModules(() => {
        jest.doMock('@app/dto-fast-check', () => ({ compileDtoFastCheck: () => undefined }));
        const { Logger } = jest.requireActual<typeof import('@nestjs/common')>('@nestjs/common');
        warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
        const isolated = jest.requireActual<typeof import('./entries-validation.pipe')>('./entries-validation.pipe');
        fallback = new isolated.EntriesValidationPipe({ maxEntries: 1_000 } as never);
      });
    });

    afterAll(() => {
      jest.dontMock('@app/dto-fast-check');
      warn.mockRestore();
    });

    it('says so once, at construction', () => {
      expect(warn).toHaveBeenCalledWith(
        'CreateEntryDto has rules the fast check does not mirror; every entry goes through class-validator',
      );
    });

    it('accepts the same entries, with only their own DTO properties', () => {
      const entries = fallback.transform([{ timestamp: VALID, value: 'v' }, { timestamp: VALID }]);
      expect(entries.map((entry) => ({ ...entry }))).toStrictEqual([
        { timestamp: VALID, value: 'v' },
        { timestamp: VALID, value: undefined },
      ]);
    });

    it(`gives the same messages, and past ${MAX_FAULT_MESSAGES} counts the rest through class-validator`, () => {
      const body = Array.from({ length: 60 }, () => ({ timestamp: 'no', value: 1, extra: true }));
      let message: string[] = [];
      try {
        fallback.transform(body);
      } catch (error) {
        message = ((error as HttpException).getResponse() as { message: string[] }).message;
      }
      expect(message.slice(0, 3)).toEqual([
        '0.property extra should not exist',
        `0.${BAD_TIMESTAMP}`,
        '0.value must be a string',
      ]);
      expect(message).toHaveLength(MAX_FAULT_MESSAGES + 1);
      expect(message[MAX_FAULT_MESSAGES]).toBe(`and ${3 * 60 - MAX_FAULT_MESSAGES} more`);
    });
  });
});
