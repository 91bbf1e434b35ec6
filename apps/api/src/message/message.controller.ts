import { Body, Controller, HttpCode, HttpStatus, Post } from '@nestjs/common';
import type { CreateEntryDto } from '@app/contracts';
import { EntriesValidationPipe } from './entries-validation.pipe';
import { type AcceptedEntries, ShardingService } from './sharding.service';

@Controller('message')
export class MessageController {
  constructor(private readonly sharding: ShardingService) {}

  @Post()
  @HttpCode(HttpStatus.CREATED)
  create(@Body(EntriesValidationPipe) entries: CreateEntryDto[]): Promise<AcceptedEntries> {
    return this.sharding.accept(entries);
  }
}
