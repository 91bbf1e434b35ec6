import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withDeadline } from '@app/testing';
import { makeFolder } from './make-folder';

describe('makeFolder', () => {
  let root: string;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'make-folder-'));
  });

  afterEach(() => rm(root, { recursive: true, force: true }));

  it('makes every missing level, and accepts a folder that exists', async () => {
    const deep = join(root, 'a', 'b', 'c');
    await makeFolder(deep);
    await makeFolder(deep);
    expect((await stat(deep)).isDirectory()).toBe(true);
  });

  it('fails under a file', async () => {
    await writeFile(join(root, 'file'), '');
    await expect(makeFolder(join(root, 'file', 'sub'))).rejects.toMatchObject({ code: 'ENOTDIR' });
  });

  // Node's recursive mkdir never settles on this path; here the failure comes at once.
  it('fails, rather than spinning, where the parent refuses the child with ENOENT (/proc)', async () => {
    await expect(
      withDeadline(makeFolder('/proc/no-such-folder/data'), 5_000, 'makeFolder under /proc'),
    ).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
