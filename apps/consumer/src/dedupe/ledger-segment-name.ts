import { hostname } from 'node:os';

/** Who wrote a segment, from its name: `<host>-<pid>-<startMs>.<seq>.log`. */
export interface SegmentName {
  host: string;
  pid: number;
  startMs: number;
  seq: number;
  /** `<host>-<pid>-<startMs>`: one writer, i.e. one run of one process. */
  writer: string;
}

const SEGMENT_NAME = /^(.+)-(\d+)-(\d+)\.(\d+)\.log$/;

/** This machine's name as segment (and staged file) names carry it. */
export function localHost(): string {
  return hostname().replace(/[^A-Za-z0-9.-]/g, '_');
}

export function formatSegmentName(host: string, pid: number, startMs: number, seq: number): string {
  return `${host}-${pid}-${startMs}.${seq}.log`;
}

/** The parts of a segment name, or undefined for anything else in the folder. */
export function parseSegmentName(name: string): SegmentName | undefined {
  const match = SEGMENT_NAME.exec(name);
  if (match === null) return undefined;
  const [, host, pid, startMs, seq] = match;
  return { host, pid: Number(pid), startMs: Number(startMs), seq: Number(seq), writer: `${host}-${pid}-${startMs}` };
}

/** Whether a process with this id runs on this machine (EPERM: it runs, under another user). */
export function isPidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Tells whether a writer may still be running: only a writer on this host can be proven gone. */
export type WriterLiveness = (name: SegmentName) => 'alive' | 'gone' | 'unknown';

export function writerLiveness(
  host: string = localHost(),
  alive: (pid: number) => boolean = isPidAlive,
): WriterLiveness {
  return (name) => {
    if (name.host !== host) return 'unknown';
    return alive(name.pid) ? 'alive' : 'gone';
  };
}
