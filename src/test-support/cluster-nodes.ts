/**
 * A replicated store for end-to-end tests: N `tongbu serve --catalog …`
 * processes on loopback, sharing a SQLite catalog file or a unique prefix of
 * the test etcd. Node i is `n<i>` (its --node-id). Helpers read a node's
 * figures, count which nodes hold a chunk, and flip a byte of a stored chunk.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { ClusterStatus, NodeStatus, RepairReport } from '../cluster/cluster-node.js';
import { addressOfDigest, type ContentHash } from '../core/hash.js';
import { makeTempDir } from './cli.js';
import { freePort, httpCall, startStoreNode, type StoreNode } from './store-node.js';

export interface ClusterOptions {
  readonly nodes: number;
  /** `sqlite` (a shared file, the default) or an etcd URL with a unique key prefix. */
  readonly catalog?: string;
  readonly replicas?: number;
  readonly replication?: 'sync' | 'quorum' | 'async';
  /** More arguments for every node. */
  readonly args?: readonly string[];
  /** Arguments for node i listening on `port` (e.g. --advertise through a proxy). */
  readonly nodeArgs?: (i: number, port: number) => Promise<readonly string[]> | readonly string[];
  /** The catalog URL node i uses (e.g. through a proxy); `catalog` by default. */
  readonly catalogFor?: (i: number) => string;
}

export interface TestCluster {
  readonly nodes: StoreNode[];
  readonly catalog: string;
  /** `tongbu://h1,h2,…/<rest>` over the given nodes (all by default). */
  url(rest: string, which?: readonly number[]): string;
  /** Adds a node to the cluster (index = nodes.length). */
  addNode(): Promise<StoreNode>;
}

/** Fast failure detection for tests; the grace period is long unless a test shortens it. */
export const TEST_CLUSTER_ARGS = [
  '--heartbeat',
  '1s',
  '--down-grace',
  '1h',
  '--repair-every',
  '0',
  '--scrub-every',
  '0',
];

export async function startCluster(options: ClusterOptions): Promise<TestCluster> {
  const root = await makeTempDir('tongbu-cluster-');
  const catalog = options.catalog ?? `sqlite:${path.join(root, 'catalog.db')}`;
  const nodes: StoreNode[] = [];
  const start = async (i: number): Promise<StoreNode> => {
    const port = await freePort();
    return startStoreNode({
      dataDir: path.join(root, `n${i + 1}`),
      port,
      args: [
        '--catalog',
        options.catalogFor?.(i) ?? catalog,
        ...((await options.nodeArgs?.(i, port)) ?? []),
        '--node-id',
        `n${i + 1}`,
        '--replicas',
        String(options.replicas ?? 3),
        '--replication',
        options.replication ?? 'quorum',
        ...TEST_CLUSTER_ARGS,
        ...(options.args ?? []),
      ],
    });
  };
  for (let i = 0; i < options.nodes; i++) nodes.push(await start(i));
  // Every node has seen every other join before the test writes.
  for (const n of nodes) {
    await waitFor(
      async () =>
        (await clusterStatus(n)).nodes.filter((m) => m.health === 'up').length === options.nodes,
      10_000,
      `node ${n.port} to see ${options.nodes} members`,
    );
  }
  return {
    nodes,
    catalog,
    url: (rest, which) =>
      `tongbu://${(which ?? nodes.map((_, i) => i)).map((i) => `127.0.0.1:${nodes[i]!.port}`).join(',')}/${rest}`,
    addNode: async () => {
      const node = await start(nodes.length);
      nodes.push(node);
      return node;
    },
  };
}

async function getJson<T>(node: StoreNode, route: string, method = 'GET'): Promise<T> {
  const r = await httpCall(node, route, { method, ...(method === 'POST' ? { body: {} } : {}) });
  if (r.status !== 200) throw new Error(`${method} ${route}: ${r.status} ${r.body.toString()}`);
  return r.json as T;
}

export const nodeStatus = (node: StoreNode): Promise<NodeStatus> =>
  getJson(node, '/v1/internal/status');
export const clusterStatus = (node: StoreNode): Promise<ClusterStatus> =>
  getJson(node, '/v1/cluster');
export const runRepair = (node: StoreNode): Promise<RepairReport> =>
  getJson(node, '/v1/cluster/repair', 'POST');
export const runScrub = (node: StoreNode): Promise<RepairReport> =>
  getJson(node, '/v1/cluster/scrub', 'POST');

const toHash = (digest: Buffer): ContentHash => addressOfDigest(digest);

/** Every object a node's index lists (read from its data directory). */
export function storedHashes(node: StoreNode): ContentHash[] {
  const db = new Database(path.join(node.dataDir, 'packs', 'index.db'), { readonly: true });
  try {
    const rows = db.prepare('SELECT hash FROM objects').all() as { hash: Buffer }[];
    return rows.map((r) => toHash(r.hash));
  } finally {
    db.close();
  }
}

/** How many of `nodes` hold each hash, by their indexes. */
export function copiesOf(nodes: readonly StoreNode[]): Map<ContentHash, number> {
  const copies = new Map<ContentHash, number>();
  for (const n of nodes) for (const h of storedHashes(n)) copies.set(h, (copies.get(h) ?? 0) + 1);
  return copies;
}

/** Flips one byte in the middle of each of `count` stored objects of a node; returns their hashes. */
export function flipBytes(node: StoreNode, count: number): ContentHash[] {
  const db = new Database(path.join(node.dataDir, 'packs', 'index.db'), { readonly: true });
  let rows: { hash: Buffer; pack: number; offset: number; length: number }[];
  try {
    rows = db
      .prepare(
        'SELECT hash, pack, "offset", length FROM objects WHERE length > 0 ORDER BY hash LIMIT ?',
      )
      .all(count) as typeof rows;
  } finally {
    db.close();
  }
  const packs = fs.readdirSync(path.join(node.dataDir, 'packs'));
  for (const r of rows) {
    const name = packs.find((p) => new RegExp(`^pack-0*${r.pack}\\.dat$`).test(p));
    if (!name) throw new Error(`no pack file for pack ${r.pack}`);
    const fd = fs.openSync(path.join(node.dataDir, 'packs', name), 'r+');
    try {
      const at = r.offset + Math.floor(r.length / 2);
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, at);
      b[0] = b[0]! ^ 0xff;
      fs.writeSync(fd, b, 0, 1, at);
    } finally {
      fs.closeSync(fd);
    }
  }
  return rows.map((r) => toHash(r.hash));
}

/** Polls `check` until it returns true or `ms` pass. */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  ms: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
