import {
  BadRequestException,
  Inject,
  Injectable,
  PayloadTooLargeException,
  type PipeTransform,
} from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { apiConfig } from '@app/config';
import { CreateEntryDto } from '@app/contracts';

const NOT_A_BATCH = 'body must be a non-empty JSON array of entries';

/**
 * Validates the top-level array of `POST /message`, which the global ValidationPipe leaves
 * alone: every entry against CreateEntryDto, each message prefixed with the entry's index
 * (`3.timestamp must be ...`). Too many entries is a 413, checked before the entries themselves.
 */
@Injectable()
export class EntriesValidationPipe implements PipeTransform<unknown, CreateEntryDto[]> {
  constructor(@Inject(apiConfig.KEY) private readonly config: ConfigType<typeof apiConfig>) {}

  transform(body: unknown): CreateEntryDto[] {
    if (!Array.isArray(body) || body.length === 0) throw new BadRequestException(NOT_A_BATCH);
    if (body.length > this.config.maxEntries) {
      throw new PayloadTooLargeException(
        `body holds ${body.length} entries; at most ${this.config.maxEntries} are allowed per request`,
      );
    }
    const messages: string[] = [];
    const entries = body.map((item: unknown, index) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) {
        messages.push(`${index} must be an object with a timestamp`);
        return undefined;
      }
      const entry = plainToInstance(CreateEntryDto, item);
      for (const error of validateSync(entry, { whitelist: true, forbidNonWhitelisted: true })) {
        for (const message of Object.values(error.constraints ?? {})) messages.push(`${index}.${message}`);
      }
      return entry;
    });
    if (messages.length > 0) throw new BadRequestException(messages);
    return entries as CreateEntryDto[];
  }
}
