/**
 * End-to-end: `tongbu gc` on the data directory of a running node. It
 * removes what only dropped versions needed, keeps every byte of tagged and
 * recent versions, and never removes a chunk an upload wrote or asked about
 * within the grace period.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { addressOfDigest } from '../core/hash.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  assertBuilt,
  diffTrees,
  makeTempDir,
  parseJsonOutput,
  removeTempDirs,
  runCli,
  sleep,
  snapshotTree,
  type TreeEntry,
} from '../test-support/cli.js';
import {
  chunkAddress,
  httpCall,
  putChunk,
  startStoreNode,
  stopAllNodes,
  type StoreNode,
} from '../test-support/store-node.js';

const BIG = 4 << 20;
const T0 = 1_600_000_000_000;

interface GcReport {
  commitsKept: number;
  objectsKept: number;
  objectsRemoved: number;
  bytesRemoved: number;
  objectsInGrace: number;
}

let work: string;
let n = 0;
const fresh = (name: string): string => path.join(work, `${name}-${n++}`);

beforeAll(async () => {
  assertBuilt();
  work = await makeTempDir('tongbu-store-gc-');
});
afterEach(stopAllNodes);
afterAll(removeTempDirs);

const env = (node: StoreNode) => ({ env: { TONGBU_TOKEN: node.token } });

async function sync(node: StoreNode, args: string[]): Promise<{ commit?: { commit: string } }> {
  const r = await runCli(['sync', ...args, '--json', '--state', fresh('state')], env(node));
  expect(r.code, `sync ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return parseJsonOutput(r.stdout);
}

async function gc(node: StoreNode, args: string[]): Promise<GcReport> {
  const r = await runCli(['gc', '--data', node.dataDir, '--json', ...args]);
  expect(r.code, r.stderr).toBe(0);
  return parseJsonOutput<GcReport>(r.stdout);
}

/** The objects a file of a commit needs: its manifest (if any) and its chunks. */
async function objectsOf(node: StoreNode, ns: string, key: string, ref: string): Promise<string[]> {
  const r = await httpCall(node, `/v1/ns/${ns}/entry/${key}?ref=${encodeURIComponent(ref)}`);
  expect(r.status, r.body.toString()).toBe(200);
  const entry = r.json as { data?: string; chunks: { hash: string }[] };
  return [...new Set([...(entry.data ? [entry.data] : []), ...entry.chunks.map((c) => c.hash)])];
}

/** Which of `hashes` the node lacks (POST /v1/chunks/missing). */
async function missing(node: StoreNode, hashes: readonly string[]): Promise<string[]> {
  const r = await httpCall(node, '/v1/chunks/missing', {
    body: Buffer.concat(hashes.map((h) => Buffer.from(h.slice('blake3:'.length), 'hex'))),
  });
  expect(r.status).toBe(200);
  const out: string[] = [];
  for (let at = 0; at < r.body.length; at += 32) {
    out.push(addressOfDigest(r.body, at));
  }
  return out;
}

/** Three versions of a namespace, each with a new big file; v1 is tagged. */
async function threeVersions(node: StoreNode, ns: string, size: number) {
  const src = fresh('src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'stable.bin'), randomBytes(size));
  fs.writeFileSync(path.join(src, 'config.json'), '{"layers": 32}\n');
  const snapshots: Map<string, TreeEntry>[] = [];
  const commits: string[] = [];
  for (let v = 1; v <= 3; v++) {
    const big = path.join(src, 'big.bin');
    fs.writeFileSync(big, randomBytes(size));
    fs.utimesSync(big, new Date(T0), new Date(T0 + v * 1000));
    const r = await sync(node, [src, node.tongbuUrl(ns), ...(v === 1 ? ['--tag', 'v1'] : [])]);
    commits.push(r.commit!.commit);
    snapshots.push(snapshotTree(src));
  }
  return { src, snapshots, commits };
}

describe('gc with a retention rule', () => {
  it('removes what only a dropped version needed; the tag and the head restore byte-exact', async () => {
    const node = await startStoreNode();
    const ns = 'models';
    const { snapshots, commits } = await threeVersions(node, ns, BIG);
    const [c1, c2, c3] = commits as [string, string, string];
    const needs = async (c: string) => [
      ...(await objectsOf(node, ns, 'big.bin', c)),
      ...(await objectsOf(node, ns, 'stable.bin', c)),
    ];
    const [of1, of2, of3] = [await needs(c1), await needs(c2), await needs(c3)];
    const kept = new Set([...of1, ...of3]);
    const onlyV2 = of2.filter((h) => !kept.has(h));
    expect(onlyV2.length).toBeGreaterThan(10); // a 4 MiB file of ~64 KiB chunks

    const report = await gc(node, ['--keep-last', '1', '--keep-days', '0', '--grace-minutes', '0']);
    console.log(`gc: ${JSON.stringify(report)}`);
    expect(report.objectsRemoved).toBeGreaterThan(0);
    // v2's chunks, its manifest, its commit, its tree nodes.
    expect(report.objectsRemoved).toBeGreaterThanOrEqual(onlyV2.length + 1);
    expect(report.bytesRemoved).toBeGreaterThanOrEqual(BIG);
    expect(report.commitsKept).toBe(2);

    expect(await missing(node, onlyV2)).toEqual(onlyV2);
    expect(await missing(node, [...kept])).toEqual([]);

    const out1 = fresh('v1');
    await sync(node, [`${node.tongbuUrl(ns)}@v1`, out1]);
    expect(diffTrees(snapshots[0]!, snapshotTree(out1))).toEqual([]);
    const out3 = fresh('v3');
    await sync(node, [node.tongbuUrl(ns), out3]);
    expect(diffTrees(snapshots[2]!, snapshotTree(out3))).toEqual([]);
    const gone = await runCli(
      ['sync', `${node.tongbuUrl(ns)}@${c2}`, fresh('v2'), '--state', fresh('state')],
      env(node),
    );
    expect(gone.code).not.toBe(0);

    // A second gc finds nothing more to remove.
    const again = await gc(node, ['--keep-last', '1', '--keep-days', '0', '--grace-minutes', '0']);
    expect(again.objectsRemoved).toBe(0);
  }, 120_000);

  it('leaves the history readable: log lists the kept versions after gc', async () => {
    const node = await startStoreNode();
    const { commits } = await threeVersions(node, 'history', 1000);
    await gc(node, ['--keep-last', '1', '--keep-days', '0', '--grace-minutes', '0']);
    const log = await runCli(['log', node.tongbuUrl('history'), '--json'], env(node));
    expect(log.code, log.stderr).toBe(0);
    const shown = parseJsonOutput<{ commits: { hash: string }[] }>(log.stdout).commits;
    expect(shown[0]?.hash).toBe(commits[2]);
  }, 120_000);
});

describe('gc and uploads in flight', () => {
  const batch = () => Array.from({ length: 6 }, () => randomBytes(30_000));
  const hashes = (chunks: readonly Buffer[]) => chunks.map(chunkAddress);

  /** Commits single-chunk files made of `chunks` to a new namespace and checks them out. */
  async function commitAndRead(node: StoreNode, ns: string, chunks: readonly Buffer[]) {
    const changes = chunks.map((c, i) => ({
      key: `part-${i}`,
      entry: {
        kind: 'file',
        size: c.length,
        mtimeMs: T0,
        mode: 0o644,
        hash: chunkAddress(c),
        data: chunkAddress(c),
        parts: 1,
      },
    }));
    const commit = await httpCall(node, `/v1/ns/${ns}/commits`, { body: { base: null, changes } });
    expect(commit.status, commit.body.toString()).toBe(200);
    const out = fresh('out');
    await sync(node, [node.tongbuUrl(ns), out]);
    chunks.forEach((c, i) => {
      expect(fs.readFileSync(path.join(out, `part-${i}`)).equals(c)).toBe(true);
    });
  }

  it('keeps the chunks an upload wrote and has not committed yet (default grace)', async () => {
    const node = await startStoreNode();
    // Something committed, so gc has live objects too.
    const src = fresh('src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'live.bin'), randomBytes(200_000));
    await sync(node, [src, node.tongbuUrl('live')]);

    // An upload: asks which chunks are missing, sends them, has not committed.
    const written = batch();
    expect(await missing(node, hashes(written))).toEqual(hashes(written));
    for (const c of written) await putChunk(node, c);
    expect(await missing(node, hashes(written))).toEqual([]);

    const report = await gc(node, ['--grace-minutes', '60']);
    expect(report.objectsRemoved).toBe(0);
    expect(await missing(node, hashes(written))).toEqual([]);
    // The upload commits against what it was told the node has.
    await commitAndRead(node, 'late', written);
    const live = fresh('live');
    await sync(node, [node.tongbuUrl('live'), live]);
    expect(diffTrees(snapshotTree(src), snapshotTree(live))).toEqual([]);
  }, 120_000);

  it('keeps old chunks an upload was just told the node has; removes the ones nobody asked about', async () => {
    const node = await startStoreNode();
    const GRACE_S = 6;
    // Written a while ago (longer than the grace period below) and not committed.
    const askedAbout = batch();
    const abandoned = batch();
    for (const c of [...askedAbout, ...abandoned]) await putChunk(node, c);
    await sleep((GRACE_S + 2) * 1000);
    // A new upload asks; the node says it has these, so the upload will not send them.
    expect(await missing(node, hashes(askedAbout))).toEqual([]);

    const report = await gc(node, ['--grace-minutes', String(GRACE_S / 60)]);
    console.log(`gc right after the upload asked: ${JSON.stringify(report)}`);
    // What the upload was told is there is still there, and it can commit on it.
    expect(await missing(node, hashes(askedAbout))).toEqual([]);
    await commitAndRead(node, 'reused', askedAbout);
    // What nobody asked about for longer than the grace period is gone.
    expect(await missing(node, hashes(abandoned))).toEqual(hashes(abandoned));
    expect(report.objectsRemoved).toBe(abandoned.length);
  }, 120_000);
});
