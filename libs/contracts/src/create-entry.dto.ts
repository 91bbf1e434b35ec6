import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, ValidateBy, type ValidationOptions } from 'class-validator';
import { isRfc3339DateTime } from '@app/rfc3339';

export const TIMESTAMP_MESSAGE = '$property must be an RFC 3339 date-time with a time zone';

/** An RFC 3339 date-time with a time zone, on a real calendar date. */
export function IsRfc3339DateTime(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isRfc3339DateTime',
      validator: { validate: isRfc3339DateTime, defaultMessage: () => TIMESTAMP_MESSAGE },
    },
    options,
  );
}

/** One entry of `POST /message`. */
export class CreateEntryDto {
  /** When the entry happened, e.g. `2019-10-12T08:10:53.52Z`; kept exactly as received. */
  @ApiProperty({
    format: 'date-time',
    description:
      'RFC 3339 date-time with a time zone (Z or ±hh:mm), fractional seconds allowed, a real calendar date; ' +
      '"T" and "Z" in either case, no space separator. Decides the shard: whole Unix seconds modulo SHARDS_COUNT.',
    example: '2019-10-12T08:10:53.52Z',
  })
  @IsRfc3339DateTime()
  timestamp!: string;

  /** Optional payload; `null` means absent. */
  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'Optional payload; null means absent.',
    example: 'D',
  })
  @IsOptional()
  @IsString()
  value?: string | null;
}
