import { validateSync } from 'class-validator';
import { CreateEntryDto, IsRfc3339DateTime, TIMESTAMP_MESSAGE } from './create-entry.dto';

/** The OpenAPI schema Nest's swagger module builds for `property` of CreateEntryDto. */
const openApi = (property: string): unknown =>
  Reflect.getMetadata('swagger/apiModelProperties', CreateEntryDto.prototype, property);

describe('CreateEntryDto', () => {
  it('documents timestamp as the contract has it: a required RFC 3339 date-time that decides the shard', () => {
    expect(openApi('timestamp')).toEqual({
      type: String,
      format: 'date-time',
      description:
        'RFC 3339 date-time with a time zone (Z or ±hh:mm), fractional seconds allowed, a real calendar date; ' +
        '"T" and "Z" in either case, no space separator. Decides the shard: whole Unix seconds modulo SHARDS_COUNT.',
      example: '2019-10-12T08:10:53.52Z',
    });
  });

  it('documents value as an optional string where null means absent', () => {
    expect(openApi('value')).toEqual({
      type: String,
      nullable: true,
      description: 'Optional payload; null means absent.',
      example: 'D',
      required: false,
      isArray: false,
    });
  });

  it('IsRfc3339DateTime names its rule and says what is wrong, or what the caller says', () => {
    class Sample {
      @IsRfc3339DateTime()
      at!: unknown;

      @IsRfc3339DateTime({ message: 'when must be a date-time' })
      when!: unknown;
    }
    const sample = Object.assign(new Sample(), { at: '2019-10-12 08:10:53Z', when: 5 });
    expect(validateSync(sample).map(({ property, constraints }) => [property, constraints])).toEqual([
      ['at', { isRfc3339DateTime: 'at must be an RFC 3339 date-time with a time zone' }],
      ['when', { isRfc3339DateTime: 'when must be a date-time' }],
    ]);
    expect(TIMESTAMP_MESSAGE).toBe('$property must be an RFC 3339 date-time with a time zone');
    expect(
      validateSync(Object.assign(new Sample(), { at: '2019-10-12T08:10:53Z', when: '2019-10-12T08:10:53Z' })),
    ).toEqual([]);
  });
});
