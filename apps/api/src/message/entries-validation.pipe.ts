import {
  BadRequestException,
  Inject,
  Injectable,
  Logger,
  PayloadTooLargeException,
  type PipeTransform,
} from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { validateSync } from 'class-validator';
import { apiConfig } from '@app/config';
import { CreateEntryDto } from '@app/contracts';
import { type DtoFastCheck, compileDtoFastCheck } from '@app/dto-fast-check';

const NOT_A_BATCH = 'body must be a non-empty JSON array of entries';
/** A 400 lists at most this many messages, then one `and N more`. */
export const MAX_FAULT_MESSAGES = 100;

/** Key names longer than this are cut short in a message, so that no key makes the 400 large. */
const MAX_KEY_SHOWN = 64;

type Item = Record<string, unknown>;

function showKey(key: string): string {
  return key.length > MAX_KEY_SHOWN ? `${key.slice(0, MAX_KEY_SHOWN)}... (${key.length} characters)` : key;
}

/** The messages of a 400, bounded: past MAX_FAULT_MESSAGES only a count is kept. */
class FaultMessages {
  readonly shown: string[] = [];
  private hidden = 0;

  get full(): boolean {
    return this.shown.length >= MAX_FAULT_MESSAGES;
  }

  add(message: string): void {
    if (this.full) this.hidden++;
    else this.shown.push(message);
  }

  addCount(count: number): void {
    this.hidden += count;
  }

  get empty(): boolean {
    return this.shown.length === 0;
  }

  messages(): string[] {
    return this.hidden === 0 ? this.shown : [...this.shown, `and ${this.hidden} more`];
  }
}

/**
 * Validates the top-level array of `POST /message`, which the global ValidationPipe leaves
 * alone: every entry against CreateEntryDto, each message prefixed with the entry's index
 * (`3.timestamp must be ...`). Too many entries is a 413, checked before the entries themselves.
 *
 * Invalid input must cost about what valid input costs, whatever its shape:
 * - an entry first meets a check compiled from CreateEntryDto's own rules, and only one it refuses
 *   goes through class-validator, which writes the messages;
 * - class-validator sees a CreateEntryDto holding only the DTO's own properties, set one by one:
 *   no class-transformer (it recurses into a value once per level of nesting), no Object.assign
 *   (a `__proto__` key JSON.parse made an own property would set the DTO's prototype). Every other
 *   own key, `__proto__` and `constructor` included, is named as an extra property;
 * - past MAX_FAULT_MESSAGES messages, faults are only counted, by the compiled check.
 */
@Injectable()
export class EntriesValidationPipe implements PipeTransform<unknown, CreateEntryDto[]> {
  private readonly logger = new Logger(EntriesValidationPipe.name);
  private readonly fastCheck?: DtoFastCheck;
  private readonly properties: readonly string[];

  constructor(@Inject(apiConfig.KEY) private readonly config: ConfigType<typeof apiConfig>) {
    this.fastCheck = compileDtoFastCheck(CreateEntryDto);
    if (this.fastCheck === undefined) {
      this.logger.warn(
        'CreateEntryDto has rules the fast check does not mirror; every entry goes through class-validator',
      );
    }
    this.properties = this.fastCheck?.properties ?? ['timestamp', 'value'];
  }

  transform(body: unknown): CreateEntryDto[] {
    if (!Array.isArray(body) || body.length === 0) throw new BadRequestException(NOT_A_BATCH);
    if (body.length > this.config.maxEntries) {
      throw new PayloadTooLargeException(
        `body holds ${body.length} entries; at most ${this.config.maxEntries} are allowed per request`,
      );
    }
    const faults = new FaultMessages();
    const entries = new Array<CreateEntryDto>(body.length);
    for (let index = 0; index < body.length; index++) {
      const item: unknown = body[index];
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        faults.add(`${index} must be an object with a timestamp`);
      } else if (this.fastCheck?.accepts(item as Item)) {
        entries[index] = this.toEntry(item as Item);
      } else if (faults.full && this.fastCheck !== undefined) {
        faults.addCount(this.fastCheck.countFaults(item as Item));
      } else if (!this.describeFaults(item as Item, `${index}.`, faults)) {
        // Only without the compiled check: class-validator found nothing wrong.
        entries[index] = this.toEntry(item as Item);
      }
    }
    if (!faults.empty) throw new BadRequestException(faults.messages());
    return entries;
  }

  /** A CreateEntryDto with the item's own DTO properties and nothing else. */
  private toEntry(item: Item): CreateEntryDto {
    const entry = new CreateEntryDto() as unknown as Item;
    for (const name of this.properties) if (Object.hasOwn(item, name)) entry[name] = item[name];
    return entry as unknown as CreateEntryDto;
  }

  /**
   * class-validator's verdict on one entry, as ValidationPipe with forbidNonWhitelisted words it;
   * true when it found a fault.
   */
  private describeFaults(item: Item, prefix: string, faults: FaultMessages): boolean {
    let found = false;
    const add = (message: string): void => {
      found = true;
      faults.add(`${prefix}${message}`);
    };
    for (const key of Object.keys(item)) {
      if (!this.properties.includes(key)) add(`property ${showKey(key)} should not exist`);
    }
    for (const error of validateSync(this.toEntry(item))) {
      for (const message of Object.values(error.constraints ?? {})) add(message);
    }
    return found;
  }
}
