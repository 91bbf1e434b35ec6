import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { AdmissionGate, ApiBusyError } from './admission-gate';

const response = () => new EventEmitter() as unknown as ServerResponse;

describe('AdmissionGate', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('lets a body in at once while the budget has room', async () => {
    const gate = new AdmissionGate(100, 1_000);
    await expect(gate.admit(60, response())).resolves.toEqual(expect.any(Function));
  });

  it('lets a waiting body in when bytes come back, before its deadline', async () => {
    const gate = new AdmissionGate(100, 1_000);
    const release = await gate.admit(100, response());
    const waiting = gate.admit(10, response());
    jest.advanceTimersByTime(999);
    release();
    await expect(waiting).resolves.toEqual(expect.any(Function));
  });

  it('answers ApiBusyError, naming the load, once a body has waited waitMs', async () => {
    const gate = new AdmissionGate(100, 1_000);
    await gate.admit(100, response());
    const waiting = gate.admit(10, response());
    jest.advanceTimersByTime(1_000);
    await expect(waiting).rejects.toThrow(ApiBusyError);
    await expect(waiting).rejects.toThrow('the api is busy with 100 bytes of other requests and 0 more waiting');
  });

  it('gives the place up when the client leaves, so the next body is not held behind it', async () => {
    const gate = new AdmissionGate(100, 1_000);
    const release = await gate.admit(50, response());
    const leaving = response();
    const large = gate.admit(80, leaving);
    const small = gate.admit(40, response());
    leaving.emit('close');
    await expect(large).rejects.toThrow(ApiBusyError);
    await expect(small).resolves.toEqual(expect.any(Function));
    release();
  });
});
