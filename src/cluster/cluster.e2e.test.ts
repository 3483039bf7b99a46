/**
 * End-to-end: a replicated store of real `tongbu serve` processes sharing a
 * SQLite catalog (the embedded cluster; the etcd one runs the same code).
 * Checked as a user would: the bytes read back from any node, the copies
 * each chunk has on disk, what the commit's answer says, what `cluster
 * status` shows, after kill -9, a flipped byte, and a node removed for good.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_TABLE } from '../core/errors.js';
import { storeAddress } from '../core/hash.js';
import { encodeBatch } from '../endpoints/tongbu/protocol.js';
import {
  assertBuilt,
  diffTrees,
  makeTempDir,
  parseJsonOutput,
  removeTempDirs,
  runCli,
  snapshotTree,
} from '../test-support/cli.js';
import {
  clusterStatus,
  copiesOf,
  flipBytes,
  nodeStatus,
  runRepair,
  runScrub,
  startCluster,
  waitFor,
  type TestCluster,
} from '../test-support/cluster-nodes.js';
import { contentBytes, MiB } from '../test-support/random-tree.js';
import { httpCall, stopAllNodes, type StoreNode } from '../test-support/store-node.js';

interface SyncJson {
  commit?: {
    uploadedBytes: number;
    replication?: { mode: string; replicas: number; wanted: number };
  };
}

function writeFiles(dir: string, seed: number, files = 12): void {
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < files; i++) {
    // Sizes from a few bytes to several chunks (the store cuts ~64 KiB chunks).
    const size = i % 3 === 0 ? 2 * MiB + i * 1000 : 1000 + i * 7919;
    fs.writeFileSync(path.join(dir, `f${i}.bin`), contentBytes(size, seed * 100 + i));
  }
}

async function push(
  cluster: TestCluster,
  dir: string,
  ns: string,
  which: readonly number[],
  extra: readonly string[] = [],
  token = cluster.nodes[0]!.token,
): Promise<{ code: number; json: SyncJson; stderr: string }> {
  const r = await runCli(['sync', dir, cluster.url(ns, which), '--json', ...extra], {
    env: { TONGBU_TOKEN: token },
  });
  return {
    code: r.code ?? -1,
    json: r.code === 0 ? parseJsonOutput<SyncJson>(r.stdout) : {},
    stderr: r.stderr,
  };
}

async function pullEquals(
  cluster: TestCluster,
  node: number,
  ns: string,
  src: string,
  extra: readonly string[] = [],
): Promise<void> {
  const out = path.join(await makeTempDir('tongbu-pull-'), 'out');
  const r = await runCli(['sync', cluster.url(ns, [node]), out, ...extra], {
    env: { TONGBU_TOKEN: cluster.nodes[node]!.token },
  });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(diffTrees(snapshotTree(src), snapshotTree(out))).toEqual([]);
}

const live = async (node: StoreNode, id: string): Promise<boolean> =>
  (await clusterStatus(node)).nodes.find((n) => n.id === id)?.health === 'up';

describe('replicated store (embedded catalog)', () => {
  beforeAll(() => assertBuilt());
  afterEach(async () => stopAllNodes());
  afterAll(async () => removeTempDirs());

  it('quorum: every chunk lands on all 3 nodes; any node serves the files; status shows 3 up', async () => {
    const cluster = await startCluster({ nodes: 3 });
    const src = path.join(await makeTempDir(), 'src');
    writeFiles(src, 1);
    const r = await push(cluster, src, 'ckpt', [0, 1], ['--replication', 'quorum']);
    expect(r.code).toBe(0);
    expect(r.json.commit?.replication).toMatchObject({ mode: 'quorum', wanted: 3 });
    expect(r.json.commit!.replication!.replicas).toBeGreaterThanOrEqual(2);
    // The stragglers of a quorum write finish in the background.
    await waitFor(
      () => [...copiesOf(cluster.nodes).values()].every((n) => n === 3),
      10_000,
      '3 copies',
    );
    for (const i of [0, 1, 2]) await pullEquals(cluster, i, 'ckpt', src);
    await pullEquals(cluster, 2, 'ckpt', src, ['--consistency', 'stale']);
    const status = await clusterStatus(cluster.nodes[2]!);
    expect(status.nodes.map((n) => [n.id, n.health])).toEqual([
      ['n1', 'up'],
      ['n2', 'up'],
      ['n3', 'up'],
    ]);
    expect(status.lag).toBe(0);
    const text = await runCli(['cluster', 'status', cluster.url('', [1])], {
      env: { TONGBU_TOKEN: cluster.nodes[0]!.token },
    });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^R=3, quorum by default, leader n\d/);
    expect(text.stdout).toMatch(/up {3}n3 {2}http:\/\/127\.0\.0\.1:\d+/);
    // A namespace's own mode applies when the client asks for none.
    const mode = await runCli(['cluster', 'mode', cluster.url('', [2]), 'logs', 'async'], {
      env: { TONGBU_TOKEN: cluster.nodes[0]!.token },
    });
    expect(mode.code).toBe(0);
    writeFiles(path.join(src, 'more'), 9, 2);
    const logs = await push(cluster, src, 'logs', [0]);
    expect(logs.json.commit?.replication).toEqual({ mode: 'async', replicas: 1, wanted: 3 });
    const ckpt = await push(cluster, src, 'ckpt', [1]);
    expect(ckpt.json.commit?.replication?.mode).toBe('quorum');
  });

  it('a new version goes to the node as deltas and reaches every replica whole', async () => {
    const cluster = await startCluster({ nodes: 3 });
    const src = path.join(await makeTempDir(), 'src');
    writeFiles(src, 2, 4);
    expect((await push(cluster, src, 'ckpt', [0], ['--replication', 'quorum'])).code).toBe(0);
    // 10,000 bytes changed in the middle of a 2 MiB file.
    const big = path.join(src, 'f0.bin');
    const bytes = fs.readFileSync(big);
    bytes.fill(7, 1_000_000, 1_010_000);
    fs.writeFileSync(big, bytes);
    const r = await push(cluster, src, 'ckpt', [0], ['--replication', 'quorum']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.commit!.uploadedBytes).toBeGreaterThanOrEqual(10_000);
    expect(r.json.commit!.uploadedBytes).toBeLessThan(30_000);
    expect(r.json.commit!.replication!.replicas).toBeGreaterThanOrEqual(2);
    await waitFor(
      () => [...copiesOf(cluster.nodes).values()].every((n) => n === 3),
      10_000,
      '3 copies',
    );
    for (const i of [1, 2]) await pullEquals(cluster, i, 'ckpt', src);
  });

  it('async with a node killed: the client fails over, the answer says 1 replica, the lag drains to 0 once it is back', async () => {
    const cluster = await startCluster({ nodes: 3 });
    const [n1, n2, n3] = cluster.nodes as [StoreNode, StoreNode, StoreNode];
    await n3.kill('SIGKILL');
    await waitFor(async () => !(await live(n1, 'n3')), 10_000, 'n3 seen down');
    const src = path.join(await makeTempDir(), 'src');
    writeFiles(src, 2);
    // The client is given the dead node first: it fails over to n1.
    const r = await push(cluster, src, 'ckpt', [2, 0], ['--replication', 'async']);
    expect(r.code).toBe(0);
    expect(r.json.commit?.replication).toEqual({ mode: 'async', replicas: 1, wanted: 3 });
    const down = await clusterStatus(n2);
    expect(down.nodes.find((n) => n.id === 'n3')?.health).toBe('down');
    expect(down.lag).toBeGreaterThan(0);
    await n3.restart();
    await waitFor(async () => (await clusterStatus(n1)).lag === 0, 20_000, 'lag 0');
    expect([...copiesOf(cluster.nodes).values()].every((n) => n === 3)).toBe(true);
    // n3 alone serves the data once the others are gone.
    await n1.kill('SIGKILL');
    await n2.kill('SIGKILL');
    await pullEquals(cluster, 2, 'ckpt', src);
  });

  it('sync mode with a replica down fails, names the count, and loses nothing once it is back', async () => {
    const cluster = await startCluster({ nodes: 3 });
    const [n1, , n3] = cluster.nodes as [StoreNode, StoreNode, StoreNode];
    await n3.kill('SIGKILL');
    await waitFor(async () => !(await live(n1, 'n3')), 10_000, 'n3 seen down');
    const src = path.join(await makeTempDir(), 'src');
    writeFiles(src, 3, 4);
    const r = await push(cluster, src, 'ckpt', [0], ['--replication', 'sync']);
    expect(r.code).toBe(ERROR_TABLE.UNAVAILABLE.exit);
    expect(r.stderr).toMatch(/sync write reached 2 of 3 replicas \(needs 3\)/);
    await n3.restart();
    await waitFor(async () => live(n1, 'n3'), 10_000, 'n3 back');
    const again = await push(cluster, src, 'ckpt', [0], ['--replication', 'sync']);
    expect(again.code).toBe(0);
    expect(again.json.commit?.replication).toEqual({ mode: 'sync', replicas: 3, wanted: 3 });
    // A chunk sent twice in one batch counts once.
    const bytes = contentBytes(5000, 77);
    const frame = { hash: storeAddress(bytes), bytes };
    const dup = await httpCall(n1, '/v1/chunks', {
      method: 'POST',
      body: Buffer.concat(encodeBatch([frame, frame])),
      headers: { 'content-type': 'application/octet-stream', 'x-tongbu-replication': 'sync' },
    });
    expect(dup.status).toBe(200);
    expect(dup.json).toMatchObject({ replication: { mode: 'sync', replicas: 3, wanted: 3 } });
    await pullEquals(cluster, 2, 'ckpt', src);
  });

  it('scrub finds every flipped byte and repairs it from a healthy replica', async () => {
    const cluster = await startCluster({ nodes: 3 });
    const src = path.join(await makeTempDir(), 'src');
    writeFiles(src, 4);
    expect((await push(cluster, src, 'ckpt', [0], ['--replication', 'sync'])).code).toBe(0);
    const n2 = cluster.nodes[1]!;
    const damaged = flipBytes(n2, 10);
    expect(damaged).toHaveLength(10);
    const report = await runScrub(n2);
    expect(report).toMatchObject({ state: 'done', found: 10, repaired: 10, remaining: 0 });
    expect(report.checked).toBe((await nodeStatus(n2)).objects);
    const again = await runScrub(n2);
    expect(again).toMatchObject({ found: 0 });
    // n2 alone serves intact bytes.
    await cluster.nodes[0]!.kill('SIGKILL');
    await cluster.nodes[2]!.kill('SIGKILL');
    await pullEquals(cluster, 1, 'ckpt', src);
  });

  it('a read that meets a damaged copy falls over to another replica and repairs it', async () => {
    const cluster = await startCluster({ nodes: 3 });
    const src = path.join(await makeTempDir(), 'src');
    writeFiles(src, 5, 3);
    expect((await push(cluster, src, 'ckpt', [0], ['--replication', 'sync'])).code).toBe(0);
    const n3 = cluster.nodes[2]!;
    flipBytes(n3, 1000);
    await pullEquals(cluster, 2, 'ckpt', src);
    expect((await nodeStatus(n3)).readRepairs).toBeGreaterThan(0);
    // What the read did not need (the empty tree of the first commit) the scrub repairs.
    const scrub = await runScrub(n3);
    expect(scrub.found).toBeLessThanOrEqual(1);
    expect(scrub.repaired).toBe(scrub.found);
  });

  it('a node removed for good: anti-entropy restores 3 copies of each of its chunks', async () => {
    const cluster = await startCluster({ nodes: 4 });
    const src = path.join(await makeTempDir(), 'src');
    writeFiles(src, 6);
    expect((await push(cluster, src, 'ckpt', [0], ['--replication', 'sync'])).code).toBe(0);
    const before = copiesOf(cluster.nodes);
    expect([...before.values()].every((n) => n >= 3)).toBe(true);
    const n4 = cluster.nodes[3]!;
    const lost = copiesOf([n4]);
    expect(lost.size).toBeGreaterThan(0);
    await n4.kill('SIGKILL');
    const rest = cluster.nodes.slice(0, 3);
    const removed = await runCli(['cluster', 'remove', cluster.url('', [0]), 'n4'], {
      env: { TONGBU_TOKEN: cluster.nodes[0]!.token },
    });
    expect(removed.code).toBe(0);
    for (const n of rest)
      await waitFor(
        async () => !(await clusterStatus(n)).nodes.some((m) => m.id === 'n4'),
        5_000,
        'n4 gone',
      );
    const reports = [];
    for (const n of rest) reports.push(await runRepair(n));
    for (const r of reports) expect(r).toMatchObject({ state: 'done', remaining: 0 });
    // Chunks n4 held were on two of the others: each needed one new copy.
    expect(reports.reduce((s, r) => s + r.repaired, 0)).toBeGreaterThan(lost.size / 2);
    const after = copiesOf(rest);
    for (const h of before.keys()) expect(after.get(h)).toBe(3);
    expect(after.size).toBe(before.size);
    // A second pass finds nothing to do: the range digests all match.
    for (const n of rest)
      expect(await runRepair(n)).toMatchObject({ found: 0, rangesDiffering: 0 });
  });
});
