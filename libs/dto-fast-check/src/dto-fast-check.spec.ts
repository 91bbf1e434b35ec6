import { plainToInstance } from 'class-transformer';
import { IsInt, IsOptional, IsString, MaxLength, ValidateIf, ValidateNested, validateSync } from 'class-validator';
import fc from 'fast-check';
import { CreateEntryDto } from '@app/contracts';
import { compileDtoFastCheck } from './dto-fast-check';

const OPTIONS = { whitelist: true, forbidNonWhitelisted: true };

/**
 * What the fast check must agree with: class-validator's messages, plus one per own key outside the
 * DTO (class-transformer drops keys named like the prototype's methods, so the whitelist misses them).
 */
function classValidatorFaults(dto: new () => object, item: Record<string, unknown>, properties: string[]): number {
  const messages = validateSync(plainToInstance(dto, item), OPTIONS).flatMap(({ property, constraints }) =>
    properties.includes(property) ? Object.keys(constraints ?? {}) : [],
  );
  return messages.length + Object.keys(item).filter((key) => !properties.includes(key)).length;
}

function classValidatorAccepts(dto: new () => object, item: Record<string, unknown>, properties: string[]): boolean {
  return classValidatorFaults(dto, item, properties) === 0;
}

const timestampLike = fc.oneof(
  fc.constantFrom(
    '2019-10-12T08:10:53.52Z',
    '2019-10-12t08:10:53z',
    '1969-12-31T23:59:59.999-04:30',
    '2019-10-12 08:10:53Z',
    '2019-10-12T08:10:53',
    '2019-02-29T00:00:00Z',
    '2020-02-29T00:00:00+00:00',
    '2019-10-12T24:00:00Z',
    '',
  ),
  fc
    .date({ min: new Date(-62_000_000_000_000), max: new Date(250_000_000_000_000), noInvalidDate: true })
    .map((date) => date.toISOString()),
  fc.string(),
);
const anyValue = fc.oneof(
  timestampLike,
  fc.string(),
  fc.constant(null),
  fc.integer(),
  fc.boolean(),
  fc.object(),
  fc.array(fc.string()),
);
const entryLike = fc.dictionary(
  fc.oneof(fc.constantFrom('timestamp', 'value', 'id', 'constructor', 'toString', 'hasOwnProperty'), fc.string()),
  anyValue,
  { maxKeys: 4 },
);

const entryShaped = fc.record({ timestamp: timestampLike, value: anyValue }, { requiredKeys: [] });

describe('compileDtoFastCheck', () => {
  describe('for CreateEntryDto', () => {
    const check = compileDtoFastCheck(CreateEntryDto);

    it('mirrors both of its rules and its whitelist', () => {
      expect(check?.properties).toEqual(['timestamp', 'value']);
      expect(check?.accepts({ timestamp: '2019-10-12T08:10:53.52Z', value: 'x' })).toBe(true);
      expect(check?.accepts({ timestamp: '2019-10-12T08:10:53.52Z', value: null })).toBe(true);
      expect(check?.accepts({ timestamp: '2019-10-12 08:10:53.52Z' })).toBe(false);
      expect(check?.accepts({ timestamp: '2019-10-12T08:10:53.52Z', value: 1 })).toBe(false);
      expect(check?.accepts({ timestamp: '2019-10-12T08:10:53.52Z', id: 'x' })).toBe(false);
      expect(check?.countFaults({ timestamp: 1, value: 1, id: 'x', constructor: 'y' })).toBe(4);
    });

    it('says yes exactly when class-validator finds nothing and no key is extra', () => {
      fc.assert(
        fc.property(fc.oneof(entryLike, entryShaped), (item) => {
          expect(check?.accepts(item)).toBe(classValidatorAccepts(CreateEntryDto, item, ['timestamp', 'value']));
        }),
        { numRuns: 3_000 },
      );
    });

    it('counts the messages class-validator gives, one per extra key', () => {
      fc.assert(
        fc.property(fc.oneof(entryLike, entryShaped), (item) => {
          expect(check?.countFaults(item)).toBe(classValidatorFaults(CreateEntryDto, item, ['timestamp', 'value']));
        }),
        { numRuns: 3_000 },
      );
    });
  });

  describe('mirrors the rules of other DTOs too', () => {
    class Sample {
      @IsString()
      @MaxLength(3)
      code!: string;

      @IsOptional()
      @IsInt()
      count?: number;

      @ValidateIf((sample: Sample) => sample.code === 'num')
      @IsInt()
      extra?: number;
    }
    const check = compileDtoFastCheck(Sample);

    it.each([
      [{ code: 'abc' }, true],
      [{ code: 'abcd' }, false],
      [{ code: 1 }, false],
      [{ code: 'a', count: 2 }, true],
      [{ code: 'a', count: null }, true],
      [{ code: 'a', count: 2.5 }, false],
      [{ code: 'a', extra: 'x' }, true],
      [{ code: 'num', extra: 'x' }, false],
      [{ code: 'num', extra: 1 }, true],
      [{ code: 'a', other: 1 }, false],
    ])('%j: %s', (item, expected) => {
      expect(check?.accepts(item)).toBe(expected);
      expect(check?.countFaults(item) === 0).toBe(expected);
      expect(classValidatorAccepts(Sample, item, ['code', 'count', 'extra'])).toBe(expected);
    });
  });

  it('gives up on rules it does not mirror, so the caller uses class-validator', () => {
    class Nested {
      @ValidateNested()
      child!: CreateEntryDto;
    }
    class Each {
      @IsString({ each: true })
      tags!: string[];
    }
    class Bare {
      name!: string;
    }
    expect(compileDtoFastCheck(Nested)).toBeUndefined();
    expect(compileDtoFastCheck(Each)).toBeUndefined();
    expect(compileDtoFastCheck(Bare)).toBeUndefined();
  });
});
