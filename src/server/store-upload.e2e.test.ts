/**
 * End-to-end: trees through a real `tongbu serve` process. A tree synced into
 * a node and back out is identical (content, modes, mtimes, links, empty
 * files and directories); versions can be tagged, diffed and restored; plain
 * HTTP serves byte ranges. An upload killed half-way (the server or the
 * client, with SIGKILL) commits nothing, and the re-run sends only what the
 * node still lacks.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_TABLE } from '../core/errors.js';
import Database from 'better-sqlite3';
import { chunkBuffer } from '../core/fastcdc.js';
import { hashBytes, storeAddress } from '../core/hash.js';
import { STORE_CHUNKER } from '../endpoints/tongbu/protocol.js';
import { openEndpoint } from '../endpoints/open-endpoint.js';
import {
  assertBuilt,
  diffTrees,
  makeTempDir,
  parseJsonOutput,
  removeTempDirs,
  runCli,
  sleep,
  snapshotTree,
  startCli,
  type CliResult,
  type RunningCli,
} from '../test-support/cli.js';
import {
  contentBytes,
  MiB,
  treeArb,
  treeStats,
  writeTree,
  type Tree,
  type TreeNode,
} from '../test-support/random-tree.js';
import {
  httpCall,
  startStoreNode,
  stopAllNodes,
  storedBytes,
  type StoreNode,
} from '../test-support/store-node.js';

const T0 = 1_600_000_000_000;

interface StoredListing {
  key: string;
  hash?: string;
}
/** Past the size from which uploads chunk in worker threads (8 MiB). */
const BIG = 12 * MiB;
const KILL_FILES = 3;
const KILL_FILE_SIZE = 64 * MiB;
const KILL_TOTAL = KILL_FILES * KILL_FILE_SIZE;
/** Kill the client once this share of the upload is stored on the node. */
const KILL_CLIENT_AT = 0.35;
/**
 * Kill the server later: a store may lose what it wrote in its last moments
 * when killed (the pack store keeps up to 1000 index rows, about 64 MiB here,
 * or one second of them, in memory), so by 60% a sound store has indexed a
 * fair part of the upload.
 */
const KILL_SERVER_AT = 0.6;
/** The re-run must send less than this share. */
const RESEND_MAX = 0.8;

interface SyncJson {
  errors: unknown[];
  files: { copied: number };
  commit?: {
    commit: string;
    entries: number;
    merged: boolean;
    tag?: string;
    uploadedBytes: number;
  };
}

let work: string;
let n = 0;
const fresh = (name: string): string => path.join(work, `${name}-${n++}`);

beforeAll(async () => {
  assertBuilt();
  work = await makeTempDir('tongbu-store-upload-');
});
afterAll(async () => {
  await stopAllNodes();
  await removeTempDirs();
});

const file = (size: number, seed: number, mode = 0o644, mtimeMs = T0 + seed): TreeNode => ({
  kind: 'file',
  size,
  seed,
  mode,
  mtimeMs,
});
const dir = (children: Record<string, TreeNode>, mode = 0o755, mtimeMs = T0): TreeNode => ({
  kind: 'dir',
  mode,
  mtimeMs,
  children: new Map(Object.entries(children)),
});
const link = (target: string): TreeNode => ({ kind: 'symlink', target, mtimeMs: T0 + 7 });

/** Nested dirs, an empty dir, links, an empty file, a 12 MiB file, odd and unicode names. */
const HANDMADE: Tree = new Map(
  Object.entries({
    data: dir({
      'big.bin': file(BIG, 1, 0o644, T0 + 1001),
      'run.sh': file(300, 2, 0o755),
      deep: dir({ er: dir({ still: dir({ 'leaf.txt': file(12, 3, 0o640) }, 0o750) }) }),
    }),
    'empty-dir': dir({}, 0o700, T0 + 5),
    'empty-file': file(0, 4, 0o600),
    'link-to-script': link('data/run.sh'),
    dangling: link('../nowhere/at/all'),
    café: dir({ '日本語のファイル.txt': file(70_000, 5), 'emoji 😀.txt': file(9, 6, 0o444) }),
    ['résumé'.normalize('NFC')]: file(3, 7),
    ['résumé'.normalize('NFD')]: file(5, 8),
    'with space & #hash %41.txt': file(1, 9),
    한국어: dir({ 'Ω≈ç√': file(200_000, 10, 0o600) }, 0o711, T0 + 77),
  }),
);

function tokenEnv(node: StoreNode): { env: NodeJS.ProcessEnv } {
  return { env: { TONGBU_TOKEN: node.token } };
}

async function syncOk(node: StoreNode, args: string[]): Promise<SyncJson> {
  const r = await runCli(['sync', ...args, '--json', '--state', fresh('state')], {
    ...tokenEnv(node),
    timeoutMs: 110_000,
  });
  expect(r.code, `sync ${args.join(' ')}:\n${r.stderr}`).toBe(0);
  const summary = parseJsonOutput<SyncJson>(r.stdout);
  expect(summary.errors).toEqual([]);
  return summary;
}

function expectSameTree(expected: string, actual: string): void {
  expect(diffTrees(snapshotTree(expected), snapshotTree(actual))).toEqual([]);
}

describe('a tree through a store node', () => {
  let node: StoreNode;
  beforeAll(async () => {
    node = await startStoreNode();
  });
  afterAll(() => node.stop());

  it('comes back identical: content, modes, mtimes, links, empty entries, unicode names', async () => {
    const src = fresh('src');
    fs.mkdirSync(src);
    await writeTree(src, HANDMADE);
    const url = node.tongbuUrl('roundtrip');
    const up = await syncOk(node, [src, url]);
    expect(up.commit?.entries).toBe(snapshotTree(src).size);
    expect(up.commit?.uploadedBytes).toBeGreaterThanOrEqual(BIG);

    const out = fresh('out');
    await syncOk(node, [url, out]);
    expectSameTree(src, out);
    expect(fs.readFileSync(path.join(out, 'data', 'big.bin')).equals(contentBytes(BIG, 1))).toBe(
      true,
    );
    for (const side of [src, out]) {
      const v = await runCli(['verify', side, url], tokenEnv(node));
      expect(v.code, v.stdout + v.stderr).toBe(0);
    }
  }, 120_000);

  it('comes back identical for random trees (odd names, deep nesting, links)', async () => {
    const seed = Number(process.env['TONGBU_TREE_SEED'] ?? Date.now() % 1_000_000);
    const trees = fc
      .sample(treeArb({ maxTotalBytes: 8 * MiB }), { numRuns: 8, seed })
      .filter((t) => t.size > 0)
      .slice(0, 4);
    for (const [i, tree] of trees.entries()) {
      const why = `seed ${seed} (TONGBU_TREE_SEED), tree ${i}: ${JSON.stringify(treeStats(tree))}`;
      const src = fresh('random-src');
      fs.mkdirSync(src);
      await writeTree(src, tree);
      const url = node.tongbuUrl(`random-${seed}-${i}`);
      const up = await syncOk(node, [src, url]);
      expect(up.commit?.entries, why).toBe(snapshotTree(src).size);
      const out = fresh('random-out');
      await syncOk(node, [url, out]);
      expect(diffTrees(snapshotTree(src), snapshotTree(out)), why).toEqual([]);
    }
  }, 120_000);

  it('keeps versions: log, diff between tags, restore of an old tag', async () => {
    const src = fresh('src');
    fs.mkdirSync(src);
    await writeTree(src, HANDMADE);
    const url = node.tongbuUrl('versions');
    const v1 = await syncOk(node, [src, url, '--tag', 'v1']);
    const v1Snapshot = snapshotTree(src);
    const changed = path.join(src, 'data', 'deep', 'er', 'still', 'leaf.txt');
    fs.writeFileSync(changed, 'version two, longer than before');
    fs.utimesSync(changed, new Date(T0 + 50_000), new Date(T0 + 50_000));
    const v2 = await syncOk(node, [src, url, '--tag', 'v2']);
    expect(v2.commit?.tag).toBe('v2');
    expect(v2.commit?.commit).not.toBe(v1.commit?.commit);
    // Only the changed file travels.
    expect(v2.commit?.uploadedBytes).toBeLessThan(1024);

    const log = await runCli(['log', url, '--json'], tokenEnv(node));
    expect(log.code, log.stderr).toBe(0);
    const history = parseJsonOutput<{
      commits: { hash: string }[];
      tags: { name: string; commit: string }[];
    }>(log.stdout);
    expect(history.commits.map((c) => c.hash)).toEqual([v2.commit?.commit, v1.commit?.commit]);
    expect(Object.fromEntries(history.tags.map((t) => [t.name, t.commit]))).toEqual({
      'tags/v1': v1.commit?.commit,
      'tags/v2': v2.commit?.commit,
    });
    const text = await runCli(['log', url], tokenEnv(node));
    expect(text.stdout.trim().split('\n')).toHaveLength(2);

    const diff = await runCli(['diff', `${url}@v1`, `${url}@v2`, '--json'], tokenEnv(node));
    expect(diff.code, diff.stderr).toBe(0);
    const changes = parseJsonOutput<{ changes: { key: string }[] }>(diff.stdout).changes;
    expect(changes.map((c) => c.key)).toEqual(['data/deep/er/still/leaf.txt']);

    const restore = fresh('restore');
    await syncOk(node, [`${url}@v1`, restore]);
    expect(diffTrees(v1Snapshot, snapshotTree(restore))).toEqual([]);
    const latest = fresh('latest');
    await syncOk(node, [url, latest]);
    expectSameTree(src, latest);
  }, 120_000);

  it('a new version of a file sends about its changed bytes: deltas of the lacked chunks', async () => {
    const v1 = fresh('delta-v1');
    fs.mkdirSync(v1);
    // 24 MiB (chunked in worker threads) and 200 KB (a few chunks, chunked here).
    const big = contentBytes(24 * MiB, 31);
    const small = contentBytes(200_000, 32);
    fs.writeFileSync(path.join(v1, 'ckpt.bin'), big);
    fs.writeFileSync(path.join(v1, 'small.bin'), small);
    // The same versions go to a second node with --whole-file (on this one, the chunks the
    // first upload of v2 sent would be there already).
    const other = await startStoreNode();
    const url = node.tongbuUrl('deltas');
    const wholeUrl = other.tongbuUrl('deltas');
    await syncOk(node, [v1, url]);
    await syncOk(other, [v1, wholeUrl]);

    // Ten scattered 20,000-byte regions replaced and 5,000 bytes inserted near the start of the
    // big file, 1,000 bytes of the small one replaced: 206,000 bytes, in some 25 chunks.
    const edited = Buffer.from(big);
    for (let i = 0; i < 10; i++) randomBytes(20_000).copy(edited, 1_000_000 + i * 2_300_000);
    const nextBig = Buffer.concat([
      edited.subarray(0, 300_000),
      randomBytes(5000),
      edited.subarray(300_000),
    ]);
    const nextSmall = Buffer.from(small);
    randomBytes(1000).copy(nextSmall, 90_000);
    const changed = 10 * 20_000 + 5000 + 1000;
    const v2 = fresh('delta-v2');
    fs.mkdirSync(v2);
    fs.writeFileSync(path.join(v2, 'ckpt.bin'), nextBig);
    fs.writeFileSync(path.join(v2, 'small.bin'), nextSmall);

    const sent = (await syncOk(node, [v2, url])).commit!.uploadedBytes;
    const sentWhole = (await syncOk(other, [v2, wholeUrl, '--whole-file'])).commit!.uploadedBytes;
    expect(sent).toBeGreaterThanOrEqual(changed);
    expect(sent).toBeLessThan(1.5 * changed);
    expect(sentWhole).toBeGreaterThan(4 * sent);

    for (const [n, ns] of [
      [node, url],
      [other, wholeUrl],
    ] as const) {
      const out = fresh('delta-out');
      await syncOk(n, [ns, out]);
      expectSameTree(v2, out);
      expect(fs.readFileSync(path.join(out, 'ckpt.bin')).equals(nextBig)).toBe(true);
    }
    await other.stop();
  }, 120_000);

  it('a node that lost a chunk of its head: the commit names it, the kept manifest goes, the re-run sends it', async () => {
    const lossy = await startStoreNode();
    const src = fresh('kept-src');
    fs.mkdirSync(src);
    const file = path.join(src, 'ckpt.bin');
    const v1 = contentBytes(12 * MiB, 41);
    fs.writeFileSync(file, v1);
    const url = lossy.tongbuUrl('kept');
    await syncOk(lossy, [src, url]);
    // The upload kept its manifest beside the sync state (syncOk's states are in `work`).
    const first = chunkBuffer(v1, STORE_CHUNKER)[0]!;
    const lost = storeAddress(v1.subarray(first.offset, first.offset + first.length));

    // The node loses the file's first chunk while it is down.
    await lossy.stop();
    const index = new Database(path.join(lossy.dataDir, 'packs', 'index.db'));
    const gone = index
      .prepare('DELETE FROM objects WHERE hash = ?')
      .run(Buffer.from(lost.slice(lost.indexOf(':') + 1), 'hex'));
    index.close();
    expect(gone.changes).toBe(1);
    await lossy.restart();

    // The next version shares that chunk: the client trusts its kept manifest and does not ask.
    const v2 = Buffer.from(v1);
    v2.fill(9, 11 * MiB, 11 * MiB + 5000);
    fs.writeFileSync(file, v2);
    const failed = await runCli(['sync', src, url, '--state', fresh('state')], tokenEnv(lossy));
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toContain(`names missing chunk ${lost}`);
    // The re-run asks about every chunk, sends the lost one, and the version reads back.
    await syncOk(lossy, [src, url]);
    const out = fresh('kept-out');
    await syncOk(lossy, [url, out]);
    expect(fs.readFileSync(path.join(out, 'ckpt.bin')).equals(v2)).toBe(true);
    await lossy.stop();
  }, 120_000);

  it('an empty directory makes a new namespace with one empty version, which syncs back', async () => {
    const src = fresh('empty-src');
    fs.mkdirSync(src);
    const url = node.tongbuUrl('empty-ns');
    const up = await syncOk(node, [src, url]);
    expect(up.commit?.entries).toBe(0);
    const again = await syncOk(node, [src, url]);
    expect(again.commit).toBeUndefined();
    const out = fresh('empty-out');
    await syncOk(node, [url, out]);
    expect(fs.readdirSync(out)).toEqual([]);
    const log = await runCli(['log', url, '--json'], tokenEnv(node));
    expect(parseJsonOutput<{ commits: unknown[] }>(log.stdout).commits).toHaveLength(1);
  }, 60_000);

  it('names files by their blake3 hash, and hashes by sha256 on request from the content', async () => {
    const src = fresh('src');
    fs.mkdirSync(src);
    await writeTree(src, new Map([['big.bin', file(BIG, 12)]]));
    const url = node.tongbuUrl('hashes');
    await syncOk(node, [src, url]);
    const bytes = contentBytes(BIG, 12);
    const listed = await httpCall(node, '/v1/ns/hashes/entries');
    const entry = (JSON.parse(listed.body.toString('utf8')) as { entries: StoredListing[] })
      .entries[0];
    expect(entry?.hash).toBe(hashBytes(bytes, 'blake3'));
    const endpoint = await openEndpoint(url, { token: node.token });
    try {
      await endpoint.open({ create: false });
      expect(await endpoint.hash(['big.bin'], { algorithm: 'sha256' })).toEqual([
        hashBytes(bytes, 'sha256'),
      ]);
      expect(await endpoint.hash(['big.bin'], { algorithm: 'blake3' })).toEqual([entry?.hash]);
    } finally {
      await endpoint.close();
    }
  }, 120_000);

  it('serves byte ranges of a file over plain HTTP', async () => {
    const src = fresh('src');
    fs.mkdirSync(src);
    await writeTree(src, new Map([['big.bin', file(BIG, 11)]]));
    await syncOk(node, [src, node.tongbuUrl('ranges')]);
    const bytes = contentBytes(BIG, 11);
    const ranges: [string, number, number][] = [
      ['bytes=0-1023', 0, 1023],
      // Crosses several chunk boundaries (chunks average 64 KiB).
      ['bytes=1000000-1399999', 1_000_000, 1_399_999],
      [`bytes=-100`, BIG - 100, BIG - 1],
    ];
    for (const [range, start, end] of ranges) {
      const r = await httpCall(node, '/v1/ns/ranges/files/big.bin', { headers: { range } });
      expect(r.status, range).toBe(206);
      expect(r.headers['content-range']).toBe(`bytes ${start}-${end}/${BIG}`);
      expect(r.body.length).toBe(end - start + 1);
      expect(r.body.equals(bytes.subarray(start, end + 1)), range).toBe(true);
    }
    const whole = await httpCall(node, '/v1/ns/ranges/files/big.bin');
    expect(whole.status).toBe(200);
    expect(whole.body.equals(bytes)).toBe(true);
    const beyond = await httpCall(node, '/v1/ns/ranges/files/big.bin', {
      headers: { range: `bytes=${BIG}-` },
    });
    expect(beyond.status).toBe(416);
  }, 120_000);
});

/** Polls `ready` every 20 ms; fails when `run` exits first or after `timeoutMs`. */
async function killPoint(run: RunningCli, ready: () => boolean, share: number, timeoutMs = 60_000) {
  let exited: CliResult | undefined;
  void run.done.then((r) => (exited = r));
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (exited) {
      throw new Error(
        `the upload ended (exit ${exited.code}) before ${share * 100}% was stored:\n${exited.stderr}`,
      );
    }
    if (Date.now() > deadline) throw new Error('timed out waiting for the upload to progress');
    await sleep(20);
  }
}

describe('an upload killed half-way', () => {
  let src: string;
  beforeAll(() => {
    src = fresh('kill-src');
    fs.mkdirSync(path.join(src, 'shards'), { recursive: true });
    for (let i = 0; i < KILL_FILES; i++) {
      const fd = fs.openSync(path.join(src, 'shards', `shard-${i}.bin`), 'w');
      for (let at = 0; at < KILL_FILE_SIZE; at += 16 * MiB) fs.writeSync(fd, randomBytes(16 * MiB));
      fs.closeSync(fd);
      fs.utimesSync(path.join(src, 'shards', `shard-${i}.bin`), new Date(T0), new Date(T0 + i));
    }
    fs.writeFileSync(path.join(src, 'README'), 'three shards\n');
  });
  afterEach(stopAllNodes);

  const stored = (node: StoreNode, share: number) => (): boolean =>
    storedBytes(node.dataDir) > share * KILL_TOTAL;

  /** No commit is visible: the branch does not exist. */
  async function expectNoCommit(node: StoreNode, ns: string): Promise<void> {
    const head = await httpCall(node, `/v1/ns/${ns}/refs/heads/main`);
    expect(head.status, head.body.toString()).toBe(404);
    expect(head.errorCode).toBe('NOT_FOUND');
    const log = await runCli(['log', node.tongbuUrl(ns)], tokenEnv(node));
    expect(log.code).toBe(ERROR_TABLE.NOT_FOUND.exit);
  }

  /** Re-runs the sync: it succeeds sending clearly less than everything; the tree comes back whole. */
  async function resumeAndCheck(node: StoreNode, ns: string, state: string): Promise<void> {
    const before = storedBytes(node.dataDir);
    const again = await runCli(['sync', src, node.tongbuUrl(ns), '--json', '--state', state], {
      ...tokenEnv(node),
      timeoutMs: 110_000,
    });
    expect(again.code, again.stderr).toBe(0);
    const summary = parseJsonOutput<SyncJson>(again.stdout);
    const sent = summary.commit?.uploadedBytes ?? NaN;
    console.log(
      `${ns}: ${(before / MiB).toFixed(1)} MiB of object data on disk; the re-run uploaded ` +
        `${(sent / MiB).toFixed(1)} MiB of ${KILL_TOTAL / MiB} MiB (${((100 * sent) / KILL_TOTAL).toFixed(1)}%)`,
    );
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan(RESEND_MAX * KILL_TOTAL);
    expect(summary.commit?.entries).toBe(KILL_FILES + 2);

    const out = fresh('kill-out');
    await syncOk(node, [node.tongbuUrl(ns), out]);
    expectSameTree(src, out);
  }

  it('SIGKILL of the server: the client fails clearly, nothing is committed, the re-run resumes', async () => {
    const node = await startStoreNode();
    const state = fresh('state');
    const run = startCli(['sync', src, node.tongbuUrl('big'), '--json', '--state', state], {
      ...tokenEnv(node),
      timeoutMs: 110_000,
    });
    await killPoint(run, stored(node, KILL_SERVER_AT), KILL_SERVER_AT);
    const killed = await node.kill('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    const failed = await run.done;
    console.log(`client after the server died: exit ${failed.code}, ${failed.stderr.trim()}`);
    expect(failed.signal).toBeNull();
    expect(failed.code).toBe(ERROR_TABLE.UNAVAILABLE.exit);
    expect(failed.stderr).toContain(`127.0.0.1:${node.port}`);
    expect(failed.stderr).toMatch(/unreachable/);
    expect(failed.stdout).not.toMatch(/"commit":\{/);

    await node.restart();
    await expectNoCommit(node, 'big');
    await resumeAndCheck(node, 'big', state);
  }, 120_000);

  it('SIGKILL of the client: nothing is committed, the re-run resumes', async () => {
    const node = await startStoreNode();
    const state = fresh('state');
    const run = startCli(['sync', src, node.tongbuUrl('big'), '--json', '--state', state], {
      ...tokenEnv(node),
      timeoutMs: 110_000,
    });
    await killPoint(run, stored(node, KILL_CLIENT_AT), KILL_CLIENT_AT);
    process.kill(run.child.pid!, 'SIGKILL');
    const killed = await run.done;
    expect(killed.signal).toBe('SIGKILL');

    const health = await httpCall(node, '/v1/health', { token: null });
    expect(health.status).toBe(200);
    await expectNoCommit(node, 'big');
    await resumeAndCheck(node, 'big', state);

    // SIGTERM stops the node cleanly: exit 0, the unclean-stop marker removed.
    const stopped = await node.stop();
    expect([stopped.code, stopped.signal], stopped.stderr).toEqual([0, null]);
    expect(fs.existsSync(path.join(node.dataDir, 'running'))).toBe(false);
  }, 120_000);
});
