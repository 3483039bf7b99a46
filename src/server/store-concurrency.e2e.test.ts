/**
 * End-to-end: concurrent writers and readers of one namespace on a real
 * `tongbu serve` process. A reader sees one version or the next, never a
 * mix; two writers from the same base both land when their changes are
 * disjoint, and when they collide exactly one wins and nothing of the loser
 * is visible.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  assertBuilt,
  makeTempDir,
  parseJsonOutput,
  removeTempDirs,
  runCli,
  snapshotTree,
} from '../test-support/cli.js';
import { contentBytes } from '../test-support/random-tree.js';
import {
  fileEntry,
  httpCall,
  putChunk,
  startStoreNode,
  stopAllNodes,
  type HttpReply,
  type StoreNode,
} from '../test-support/store-node.js';

const VERSIONS = 15;
const FILES = 20;
const T0 = 1_600_000_000_000;

let work: string;
let n = 0;
const fresh = (name: string): string => path.join(work, `${name}-${n++}`);

beforeAll(async () => {
  assertBuilt();
  work = await makeTempDir('tongbu-store-concurrency-');
});
afterAll(async () => {
  await stopAllNodes();
  await removeTempDirs();
});

const fileName = (i: number): string => `part-${String(i).padStart(2, '0')}.txt`;

/** File i of version v: a header naming both, then filler that differs per version (some files span several chunks). */
function contentOf(v: number, i: number): Buffer {
  const size = i % 5 === 0 ? 300_000 + i * 1000 : 100 + i * 37;
  return Buffer.concat([Buffer.from(`version ${v} file ${i}\n`), contentBytes(size, v * 1000 + i)]);
}

function versionOf(bytes: Buffer): number {
  const m = /^version (\d+) file \d+\n/.exec(bytes.subarray(0, 40).toString('latin1'));
  return m ? Number(m[1]) : NaN;
}

/**
 * Checks that one snapshot (file name -> bytes) is exactly one version:
 * every file present, all of the same version, each byte for byte.
 */
function checkOneVersion(files: ReadonlyMap<string, Buffer>, where: string): number {
  expect([...files.keys()].sort(), where).toEqual(
    Array.from({ length: FILES }, (_, i) => fileName(i)),
  );
  const versions = new Set([...files.values()].map(versionOf));
  expect([...versions], `${where}: versions in one snapshot`).toHaveLength(1);
  const v = [...versions][0]!;
  for (let i = 0; i < FILES; i++) {
    expect(files.get(fileName(i))!.equals(contentOf(v, i)), `${where}: ${fileName(i)}`).toBe(true);
  }
  return v;
}

function tokenEnv(node: StoreNode): { env: NodeJS.ProcessEnv } {
  return { env: { TONGBU_TOKEN: node.token } };
}

describe('readers during a stream of commits', () => {
  afterEach(stopAllNodes);

  it('see one whole version at a time, by CLI and by HTTP', async () => {
    const node = await startStoreNode();
    const url = node.tongbuUrl('versions');
    const src = fresh('src');
    fs.mkdirSync(src);
    const writerState = fresh('writer-state');
    const commits: string[] = [];
    const writeVersion = async (v: number): Promise<void> => {
      for (let i = 0; i < FILES; i++) {
        const p = path.join(src, fileName(i));
        fs.writeFileSync(p, contentOf(v, i));
        fs.utimesSync(p, new Date(T0 + v * 1000), new Date(T0 + v * 1000 + i));
      }
      const r = await runCli(['sync', src, url, '--json', '--state', writerState], tokenEnv(node));
      expect(r.code, `writer, version ${v}: ${r.stderr}`).toBe(0);
      const summary = parseJsonOutput<{ commit?: { commit: string; entries: number } }>(r.stdout);
      expect(summary.commit?.entries).toBe(FILES);
      commits.push(summary.commit!.commit);
    };

    await writeVersion(1);
    let writing = true;
    const seenByCli: number[] = [];
    const seenByHttp: number[] = [];

    // Each reader reads until one read has started after the last commit.
    const cliReader = async (): Promise<void> => {
      for (let last = false; !last;) {
        last = !writing;
        const out = fresh('read');
        const r = await runCli(['sync', url, out, '--state', fresh('read-state')], tokenEnv(node));
        expect(r.code, `reader: ${r.stderr}`).toBe(0);
        const snapshot = snapshotTree(out);
        expect([...snapshot.values()].every((e) => e.kind === 'file')).toBe(true);
        const files = new Map(
          [...snapshot.keys()].map((k) => [k, fs.readFileSync(path.join(out, k))]),
        );
        seenByCli.push(checkOneVersion(files, `CLI snapshot ${seenByCli.length}`));
        fs.rmSync(out, { recursive: true });
      }
    };

    const httpReader = async (): Promise<void> => {
      for (let last = false; !last;) {
        last = !writing;
        const head = await httpCall(node, '/v1/ns/versions/refs/heads/main');
        expect(head.status).toBe(200);
        const commit = (head.json as { commit: string }).commit;
        const replies = await Promise.all(
          Array.from({ length: FILES }, (_, i) =>
            httpCall(
              node,
              `/v1/ns/versions/files/${fileName(i)}?ref=${encodeURIComponent(commit)}`,
            ),
          ),
        );
        for (const r of replies) expect(r.status, r.body.toString().slice(0, 200)).toBe(200);
        const files = new Map(replies.map((r, i): [string, Buffer] => [fileName(i), r.body]));
        seenByHttp.push(checkOneVersion(files, `HTTP read of ${commit}`));
      }
    };

    const writer = async (): Promise<void> => {
      try {
        for (let v = 2; v <= VERSIONS; v++) await writeVersion(v);
      } finally {
        writing = false;
      }
    };
    await Promise.all([writer(), cliReader(), httpReader()]);

    console.log(
      `${VERSIONS} versions written; CLI reader saw ${JSON.stringify(seenByCli)}, ` +
        `HTTP reader saw ${JSON.stringify(seenByHttp)}`,
    );
    expect(new Set(commits).size).toBe(VERSIONS);
    // The readers ran while the versions changed, and only ever forward.
    expect(seenByCli.length).toBeGreaterThanOrEqual(3);
    expect(seenByHttp.length).toBeGreaterThanOrEqual(VERSIONS);
    expect(new Set([...seenByCli, ...seenByHttp]).size).toBeGreaterThanOrEqual(3);
    for (const seen of [seenByCli, seenByHttp]) {
      expect(seen).toEqual([...seen].sort((a, b) => a - b));
      expect(seen[seen.length - 1]).toBe(VERSIONS);
    }
    const log = await runCli(['log', url, '--json'], tokenEnv(node));
    const history = parseJsonOutput<{ commits: { hash: string }[] }>(log.stdout);
    expect(history.commits.map((c) => c.hash)).toEqual([...commits].reverse());
  }, 120_000);
});

describe('two writers from the same base', () => {
  let node: StoreNode;
  const ns = (name: string): string => `/v1/ns/${name}`;
  const commit = (name: string, body: object): Promise<HttpReply> =>
    httpCall(node, `${ns(name)}/commits`, { body });
  const entries = async (name: string): Promise<Map<string, Record<string, unknown>>> => {
    const r = await httpCall(node, `${ns(name)}/entries`);
    expect(r.status).toBe(200);
    const list = (r.json as { entries: (Record<string, unknown> & { key: string })[] }).entries;
    return new Map(list.map(({ key, ...rest }) => [key, rest]));
  };
  const dirEntry = (mtimeMs: number) => ({ kind: 'dir', size: 0, mtimeMs, mode: 0o755 });
  const linkEntry = (target: string) => ({
    kind: 'symlink',
    size: 0,
    mtimeMs: T0,
    mode: 0,
    target,
  });

  /** A namespace with one commit; returns its hash. */
  async function seed(name: string): Promise<string> {
    const bytes = Buffer.from('the base file\n');
    await putChunk(node, bytes);
    const r = await commit(name, {
      base: null,
      changes: [
        { key: 'base.txt', entry: fileEntry(bytes) },
        { key: 'shared', entry: dirEntry(T0) },
      ],
    });
    expect(r.status, r.body.toString()).toBe(200);
    return (r.json as { commit: string }).commit;
  }

  beforeAll(async () => {
    node = await startStoreNode();
  });
  afterAll(() => node.stop());

  it('disjoint changes both land; the later one reports merged', async () => {
    const base = await seed('disjoint');
    const content = Buffer.from('written by A\n');
    await putChunk(node, content);
    const a = await commit('disjoint', {
      base,
      changes: [{ key: 'from-a.txt', entry: fileEntry(content, { mtimeMs: T0 + 1 }) }],
      message: 'A',
    });
    const b = await commit('disjoint', {
      base,
      changes: [
        { key: 'from-b', entry: linkEntry('base.txt') },
        { key: 'base.txt', entry: null },
      ],
      message: 'B',
    });
    expect(a.status, a.body.toString()).toBe(200);
    expect(b.status, b.body.toString()).toBe(200);
    expect((a.json as { merged: boolean }).merged).toBe(false);
    expect((b.json as { merged: boolean; parent: string }).merged).toBe(true);
    expect((b.json as { parent: string }).parent).toBe((a.json as { commit: string }).commit);
    expect([...(await entries('disjoint')).keys()].sort()).toEqual([
      'from-a.txt',
      'from-b',
      'shared',
    ]);

    // What a user syncs out has both changes.
    const out = fresh('out');
    const r = await runCli(
      ['sync', node.tongbuUrl('disjoint'), out, '--state', fresh('state')],
      tokenEnv(node),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(out, 'from-a.txt'), 'utf8')).toBe('written by A\n');
    expect(fs.readlinkSync(path.join(out, 'from-b'))).toBe('base.txt');
    expect(fs.existsSync(path.join(out, 'base.txt'))).toBe(false);
  }, 120_000);

  it('disjoint changes sent at the same moment all land', async () => {
    let base = await seed('racing');
    const ROUNDS = 10;
    for (let round = 0; round < ROUNDS; round++) {
      const [a, b] = await Promise.all([
        commit('racing', { base, changes: [{ key: `a/${round}`, entry: dirEntry(T0 + round) }] }),
        commit('racing', { base, changes: [{ key: `b/${round}`, entry: linkEntry(`t${round}`) }] }),
      ]);
      expect([a.status, b.status], a.body.toString() + b.body.toString()).toEqual([200, 200]);
      const merged = [a, b].map((r) => (r.json as { merged: boolean }).merged);
      expect(merged.filter(Boolean), `round ${round}`).toHaveLength(1);
      base = ((merged[0] ? a : b).json as { commit: string }).commit;
    }
    const keys = [...(await entries('racing')).keys()];
    for (let round = 0; round < ROUNDS; round++) {
      expect(keys).toContain(`a/${round}`);
      expect(keys).toContain(`b/${round}`);
    }
    const log = await httpCall(node, `${ns('racing')}/log`);
    expect((log.json as { commits: unknown[] }).commits).toHaveLength(1 + 2 * ROUNDS);
  }, 120_000);

  it('a conflicting change: one wins, the other gets 409 CONFLICT naming the key, nothing of it visible', async () => {
    const base = await seed('conflict');
    const mine = Buffer.from('mine\n');
    const theirs = Buffer.from('theirs, different\n');
    await putChunk(node, mine);
    await putChunk(node, theirs);
    const body = (who: string, bytes: Buffer) => ({
      base,
      changes: [
        { key: 'base.txt', entry: fileEntry(bytes, { mtimeMs: T0 + 9 }) },
        { key: `only-${who}.txt`, entry: fileEntry(bytes) },
      ],
      message: who,
    });
    const [a, b] = await Promise.all([
      commit('conflict', body('a', mine)),
      commit('conflict', body('b', theirs)),
    ]);
    expect([a.status, b.status].sort(), a.body.toString() + b.body.toString()).toEqual([200, 409]);
    const [winner, loser] = a.status === 200 ? ['a', 'b'] : ['b', 'a'];
    const lost = a.status === 200 ? b : a;
    expect(lost.errorCode).toBe('CONFLICT');
    const error = (lost.json as { error: { message: string; data: { keys?: string[] } } }).error;
    expect(error.message).toContain('base.txt');
    expect(error.data.keys).toEqual(['base.txt']);

    const now = await entries('conflict');
    expect([...now.keys()].sort()).toEqual(['base.txt', `only-${winner}.txt`, 'shared']);
    expect(now.has(`only-${loser}.txt`)).toBe(false);
    const won = await httpCall(node, `${ns('conflict')}/files/base.txt`);
    expect(won.body.toString()).toBe(winner === 'a' ? 'mine\n' : 'theirs, different\n');
    const log = await httpCall(node, `${ns('conflict')}/log`);
    expect((log.json as { commits: { message: string }[] }).commits.map((c) => c.message)).toEqual([
      winner,
      '',
    ]);

    // Sequentially too: the second writer, from the stale base, is refused.
    const third = Buffer.from('a third writer\n');
    await putChunk(node, third);
    const again = await commit('conflict', body('c', third));
    expect(again.status).toBe(409);
    expect(again.errorCode).toBe('CONFLICT');
    expect((await entries('conflict')).has('only-c.txt')).toBe(false);
  }, 120_000);
});
