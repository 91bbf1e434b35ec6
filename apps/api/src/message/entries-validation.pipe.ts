import {
  BadRequestException,
  Inject,
  Injectable,
  Logger,
  PayloadTooLargeException,
  type PipeTransform,
} from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { plainToInstance } from 'class-transformer';
import { type ValidatorOptions, validateSync } from 'class-validator';
import { apiConfig } from '@app/config';
import { CreateEntryDto } from '@app/contracts';
import { type DtoFastCheck, compileDtoFastCheck } from './dto-fast-check';

const NOT_A_BATCH = 'body must be a non-empty JSON array of entries';
const VALIDATOR_OPTIONS: ValidatorOptions = { whitelist: true, forbidNonWhitelisted: true };

/**
 * Validates the top-level array of `POST /message`, which the global ValidationPipe leaves
 * alone: every entry against CreateEntryDto, each message prefixed with the entry's index
 * (`3.timestamp must be ...`). Too many entries is a 413, checked before the entries themselves.
 *
 * class-validator costs about 2 µs an entry, more than the rest of a request's work; so an entry
 * first meets a check compiled from CreateEntryDto's own rules, and only one it refuses goes
 * through class-validator, which writes the messages.
 */
@Injectable()
export class EntriesValidationPipe implements PipeTransform<unknown, CreateEntryDto[]> {
  private readonly logger = new Logger(EntriesValidationPipe.name);
  private readonly fastCheck?: DtoFastCheck;

  constructor(@Inject(apiConfig.KEY) private readonly config: ConfigType<typeof apiConfig>) {
    this.fastCheck = compileDtoFastCheck(CreateEntryDto);
    if (this.fastCheck === undefined) {
      this.logger.warn(
        'CreateEntryDto has rules the fast check does not mirror; every entry goes through class-validator',
      );
    }
  }

  transform(body: unknown): CreateEntryDto[] {
    if (!Array.isArray(body) || body.length === 0) throw new BadRequestException(NOT_A_BATCH);
    if (body.length > this.config.maxEntries) {
      throw new PayloadTooLargeException(
        `body holds ${body.length} entries; at most ${this.config.maxEntries} are allowed per request`,
      );
    }
    const messages: string[] = [];
    const entries = new Array<CreateEntryDto>(body.length);
    for (let index = 0; index < body.length; index++) {
      const item: unknown = body[index];
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        messages.push(`${index} must be an object with a timestamp`);
      } else if (this.fastCheck?.(item as Record<string, unknown>)) {
        entries[index] = Object.assign(new CreateEntryDto(), item);
      } else {
        const { entry, faults } = validateEntry(item);
        for (const fault of faults) messages.push(`${index}.${fault}`);
        entries[index] = entry;
      }
    }
    if (messages.length > 0) throw new BadRequestException(messages);
    return entries;
  }
}

/** class-validator's verdict on one entry, as ValidationPipe would reach it. */
function validateEntry(item: object): { entry: CreateEntryDto; faults: string[] } {
  const entry = plainToInstance(CreateEntryDto, item);
  // class-transformer silently drops keys named like the prototype's methods (`constructor`,
  // `toString`), so the whitelist never sees them; they are extra properties all the same.
  const faults = Object.keys(item)
    .filter((key) => !Object.hasOwn(entry, key))
    .map((key) => `property ${key} should not exist`);
  for (const error of validateSync(entry, VALIDATOR_OPTIONS)) faults.push(...Object.values(error.constraints ?? {}));
  return { entry, faults };
}
