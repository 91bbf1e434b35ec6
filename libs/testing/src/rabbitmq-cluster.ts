import { execFile } from 'node:child_process';
import { readFile, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = join(__dirname, '..', '..', '..', 'scripts', 'rabbitmq-cluster.sh');

/** A node of the test cluster: rc<N>@localhost, AMQP on 127.0.0.1:568<N>. */
export type ClusterNode = 1 | 2 | 3;
export const CLUSTER_NODES: readonly ClusterNode[] = [1, 2, 3];

const AMQP_PORT_BASE = 5680;
/** Starting every node from nothing takes about 13 s here; one node about 4 s. */
const START_TIMEOUT_MS = 120_000;

/**
 * The three-node RabbitMQ cluster of scripts/rabbitmq-cluster.sh, for tests: start it, kill a node
 * (SIGKILL, a crash) and start it again, and see which nodes a process is connected to. It runs
 * beside the machine's own broker and never touches it. Starting nodes is heavy: the caller holds
 * /tmp/heavy.lock (`flock /tmp/heavy.lock npm run test:faults`); nothing here takes it again.
 */
export class RabbitmqCluster {
  private constructor() {}

  /** Starts whatever is not running and joins it (0.3 s when all three run already). */
  static async start(): Promise<RabbitmqCluster> {
    await script(['start']);
    return new RabbitmqCluster();
  }

  /** Kills every node and removes everything `start` made. */
  static async stop(): Promise<void> {
    await script(['stop']);
  }

  /** The AMQP URL of `node` (guest/guest). */
  urlOf(node: ClusterNode): string {
    return `amqp://guest:guest@127.0.0.1:${AMQP_PORT_BASE + node}`;
  }

  /** RABBITMQ_URL for the apps: the nodes as a comma-separated list, in the order given. */
  rabbitmqUrl(nodes: readonly ClusterNode[] = CLUSTER_NODES): string {
    return nodes.map((node) => this.urlOf(node)).join(',');
  }

  /** SIGKILLs `node` and resolves once its process is gone; its data stays, as after a crash. */
  async kill(node: ClusterNode): Promise<void> {
    await script(['kill', String(node)]);
  }

  /** Starts `node` again (it rejoins from its own data) and resolves once it has booted. */
  async startNode(node: ClusterNode): Promise<void> {
    await script(['start-node', String(node)]);
  }

  /**
   * The nodes `pid` holds an established TCP connection to, from /proc: which node an app is
   * connected to, seen from outside as an operator would (`ss -tnp`).
   */
  async nodesConnectedFrom(pid: number): Promise<ClusterNode[]> {
    const inodes = new Set<string>();
    for (const fd of await readdir(`/proc/${pid}/fd`)) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const match = /^socket:\[(\d+)\]$/.exec(target);
      if (match !== null) inodes.add(match[1]);
    }
    const nodes = new Set<ClusterNode>();
    for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
      const text = await readFile(table, 'utf8').catch(() => '');
      for (const line of text.split('\n').slice(1)) {
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
        const fields = line.trim().split(/\s+/);
        if (fields.length < 10 || fields[3] !== '01' || !inodes.has(fields[9])) continue;
        const port = parseInt(fields[2].split(':')[1], 16);
        const node = port - AMQP_PORT_BASE;
        if ((CLUSTER_NODES as readonly number[]).includes(node)) nodes.add(node as ClusterNode);
      }
    }
    return [...nodes].sort();
  }
}

/** Runs scripts/rabbitmq-cluster.sh; a failure carries what the script printed. */
async function script(args: string[]): Promise<string> {
  try {
    const { stdout } = await run(SCRIPT, args, { timeout: START_TIMEOUT_MS });
    return stdout;
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`scripts/rabbitmq-cluster.sh ${args.join(' ')} failed: ${stderr || stdout}`, { cause: error });
  }
}
