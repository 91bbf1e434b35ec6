import { freePort } from './free-port';

describe('freePort', () => {
  it('never hands out the same port twice, though the system offers a freed port again', async () => {
    // One after another, 300 plain listen(0)-and-close calls repeat a port a few times on Linux.
    const ports: number[] = [];
    for (let i = 0; i < 300; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
  });
});
