import { Module } from '@nestjs/common';
import { ShutdownGate } from './shutdown-gate.service';

@Module({
  providers: [ShutdownGate],
  exports: [ShutdownGate],
})
export class ShutdownModule {}
