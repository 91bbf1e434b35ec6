import type { Logger } from '@nestjs/common';
import { BrokerOutageLog } from './broker-outage-log';

function recorder() {
  const lines: string[] = [];
  const logger = {
    warn: (line: string) => lines.push(`warn ${line}`),
    log: (line: string) => lines.push(`log ${line}`),
  } as unknown as Logger;
  return { lines, logger };
}

describe('BrokerOutageLog', () => {
  it('one broker: one warning with how to start one, one line when it is back', () => {
    const { lines, logger } = recorder();
    const log = new BrokerOutageLog(logger, ['amqp://u:secret@host:5672'], 'answering 503');
    log.restored('amqp://u:secret@host:5672');
    log.lost(new Error('ECONNREFUSED'));
    log.lost({ err: new Error('ECONNREFUSED'), url: 'amqp://u:secret@host:5672' });
    log.restored('amqp://u:secret@host:5672');
    expect(lines).toEqual([
      'warn RabbitMQ is not reachable at amqp://u:***@host:5672 (ECONNREFUSED); answering 503 and retrying. ' +
        'Start one with `docker compose up -d rabbitmq` or `rabbitmq-server -detached`.',
      'log connected to RabbitMQ again at amqp://u:***@host:5672',
    ]);
  });

  it('a cluster: names the node lost, the nodes that failed meanwhile and the node reached', () => {
    const { lines, logger } = recorder();
    const nodes = ['amqp://u:p@n1', 'amqp://u:p@n2', 'amqp://u:p@n3'];
    const log = new BrokerOutageLog(logger, nodes, 'answering 503');
    log.restored('amqp://u:p@n2');
    log.lost(undefined);
    log.lost(new Error('ECONNREFUSED'), 'amqp://u:p@n2');
    log.restored('amqp://u:p@n3');
    expect(lines).toEqual([
      'warn RabbitMQ is not reachable at amqp://u:***@n2 (connection closed); answering 503 and retrying on the ' +
        'nodes in turn (amqp://u:***@n1, amqp://u:***@n2, amqp://u:***@n3).',
      'log connected to RabbitMQ again at amqp://u:***@n3 (nodes that failed meanwhile: amqp://u:***@n2)',
    ]);
  });
});
