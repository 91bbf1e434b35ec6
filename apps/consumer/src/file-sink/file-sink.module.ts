import { Module } from '@nestjs/common';
import { FileSinkService } from './file-sink.service';

@Module({
  providers: [FileSinkService],
  exports: [FileSinkService],
})
export class FileSinkModule {}
