import { Module } from '@nestjs/common';
import { DedupeModule } from '../dedupe/dedupe.module';
import { FileSinkService } from './file-sink.service';

@Module({
  imports: [DedupeModule],
  providers: [FileSinkService],
  exports: [FileSinkService],
})
export class FileSinkModule {}
