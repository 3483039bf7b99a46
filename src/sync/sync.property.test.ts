/**
 * Property tests of `sync` and `copy` between two real directories: random
 * trees with odd names, links, empty directories, modes and mtimes must come
 * out identical (bytes, kinds, link targets, modes, mtimes to the
 * millisecond), and an incremental run must move exactly what changed.
 */
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FsEndpoint } from '../endpoints/fs/fs-endpoint.js';
import {
  dirModeArb,
  fileModeArb,
  linkTargetArb,
  MiB,
  mtimeArb,
  nameArb,
  NORMALIZATION_WORDS,
  treeArb,
  treeStats,
  writeFileNode,
  writeTree,
  type FileNode,
  type Tree,
  type TreeNode,
} from '../test-support/random-tree.js';
import {
  diffSnapshots,
  inodesOf,
  snapshotTree,
  tempKeys,
  type TreeSnapshot,
} from '../test-support/tree-snapshot.js';
import { runSync } from './sync-engine.js';
import { parseSyncOptions, type SyncOptionsInput } from './sync-options.js';
import type { SyncSummary } from './sync-summary.js';
import { runVerify, type VerifyReport } from './verify.js';

/** A source, a destination and a state file in a fresh temp directory. */
interface Pair {
  readonly src: string;
  readonly dst: string;
  readonly state: string;
}

async function withPair<T>(fn: (pair: Pair) => Promise<T>): Promise<T> {
  const base = await fsp.mkdtemp(path.join(tmpdir(), 'tongbu-sync-prop-'));
  const pair = {
    src: path.join(base, 'src'),
    dst: path.join(base, 'dst'),
    state: path.join(base, 'state.db'),
  };
  await fsp.mkdir(pair.src);
  await fsp.mkdir(pair.dst);
  try {
    return await fn(pair);
  } finally {
    await makeWritable(base);
    await fsp.rm(base, { recursive: true, force: true });
  }
}

/** Gives the owner rwx on every directory below `dir`: a non-root user can then remove it. */
async function makeWritable(dir: string): Promise<void> {
  const st = await fsp.lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) return;
  await fsp.chmod(dir, (st.mode & 0o7777) | 0o700);
  for (const name of await fsp.readdir(dir)) await makeWritable(path.join(dir, name));
}

/** One run with fresh endpoints, as the CLI does; the mass-delete guard is off. */
async function sync(
  command: 'sync' | 'copy',
  pair: Pair,
  options: Omit<SyncOptionsInput, 'state'> = {},
): Promise<SyncSummary> {
  const source = new FsEndpoint(pair.src);
  const destination = new FsEndpoint(pair.dst);
  try {
    return await runSync({
      command,
      source,
      destination,
      options: parseSyncOptions({ state: pair.state, force: true, ...options }),
    });
  } finally {
    await source.close();
    await destination.close();
  }
}

async function verify(pair: Pair): Promise<VerifyReport> {
  const source = new FsEndpoint(pair.src);
  const destination = new FsEndpoint(pair.dst);
  try {
    return await runVerify({ source, destination });
  } finally {
    await source.close();
    await destination.close();
  }
}

/** The destination is identical to the source, verified, with no temp file left. */
async function expectIdentical(pair: Pair): Promise<TreeSnapshot> {
  const [src, dst] = await Promise.all([snapshotTree(pair.src), snapshotTree(pair.dst)]);
  expect(tempKeys(dst)).toEqual([]);
  expect(diffSnapshots(src, dst)).toEqual([]);
  const report = await verify(pair);
  expect(report).toMatchObject({ equal: true, missing: [], extra: [], different: [], errors: [] });
  return src;
}

function expectClean(summary: SyncSummary): void {
  expect(summary.errors).toEqual([]);
  expect(summary.warnings).toEqual([]);
  expect(summary.removedTemps).toBe(0);
}

const DAY = 86_400_000;

/** `TONGBU_PROPERTY_SCALE=10` runs ten times as many cases (a soak run). */
const SCALE = Number(process.env['TONGBU_PROPERTY_SCALE'] ?? '1');
const runs = (n: number): number => Math.max(1, Math.round(n * SCALE));
/**
 * Every case touches the disk, and so does every shrinking step: a failing
 * property stops shrinking after this long and reports the smallest case so
 * far, so that the file stays within its timeout.
 */
const TIME_LIMIT_MS = 30_000 * SCALE;
const PROPERTY_TIMEOUT_MS = 2 * TIME_LIMIT_MS;

const file = (size: number, seed: number, mode = 0o644, mtimeMs = 1_600_000_000_000): FileNode => ({
  kind: 'file',
  size,
  seed,
  mode,
  mtimeMs,
});
const dir = (
  children: [string, TreeNode][],
  mode = 0o755,
  mtimeMs = 1_500_000_000_000,
): TreeNode => ({
  kind: 'dir',
  mode,
  mtimeMs,
  children: new Map(children),
});
const link = (target: string, mtimeMs = 1_400_000_000_000): TreeNode => ({
  kind: 'symlink',
  target,
  mtimeMs,
});

/** A deep chain of directories ending in `leaf`. */
function chain(depth: number, leaf: [string, TreeNode][]): TreeNode {
  let node = dir(leaf, 0o750, 1_300_000_000_000);
  for (let i = depth - 1; i > 0; i--)
    node = dir([[`level ${i}`, node]], 0o700, 1_300_000_000_000 + i);
  return node;
}

/** Every odd feature at once, run before the random trees. */
const HAND_TREE: Tree = new Map<string, TreeNode>([
  ['empty', file(0, 0)],
  ['tab\tand\\backslash "quoted" \'single\'', file(10, 1, 0o600)],
  ['.hidden', file(20, 2, 0o400)],
  ['emoji 😀 中文', file(30, 3, 0o755, 1_000_000_000_123)],
  [NORMALIZATION_WORDS[0]!.normalize('NFC'), file(3, 4)],
  [NORMALIZATION_WORDS[0]!.normalize('NFD'), file(4, 5)],
  ['é'.repeat(100), file(1, 6)],
  ['epoch', file(1, 7, 0o644, 0)],
  ['empty dir', dir([], 0o700, 1_234_567_890_123)],
  [
    'large',
    dir([
      ['eight MiB', file(8 * MiB, 8)],
      ['nine MiB', file(9 * MiB + 3, 9, 0o600, 1_111_111_111_111)],
      ['four MiB plus one', file(4 * MiB + 1, 10)],
    ]),
  ],
  [
    'links',
    dir([
      ['inside', link('../emoji 😀 中文')],
      ['to dir', link('../large')],
      ['dangling', link('nowhere/at/all')],
      ['outside', link('../../etc/passwd')],
      ['absolute', link('/etc/passwd')],
      ['self', link('self')],
      ['dot', link('.')],
    ]),
  ],
  [
    'deep',
    chain(12, [
      ['bottom', file(100, 11)],
      ['bottom link', link('../../../../..')],
    ]),
  ],
]);

/** Names of mutations applied to a synced source. */
const MUTATIONS = [
  'modify-same-size',
  'modify-new-size',
  'touch',
  'chmod',
  'add-file',
  'add-dir',
  'add-link',
  'delete-file',
  'delete-link',
  'delete-dir',
  'file-to-dir',
  'dir-to-file',
  'retarget-link',
] as const;

interface Mutation {
  readonly op: (typeof MUTATIONS)[number];
  /** Which candidate entry (modulo their number). */
  readonly pick: number;
  /** In hand-written cases: the entry (for additions, the parent directory) to act on. */
  readonly key?: string;
  readonly name: string;
  readonly file: FileNode;
  readonly mode: number;
  readonly dirMode: number;
  readonly mtimeMs: number;
  readonly target: string;
}

const smallFileArb: fc.Arbitrary<FileNode> = fc.record({
  kind: fc.constant('file' as const),
  size: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 64 << 10 })),
  seed: fc.nat(),
  mode: fileModeArb,
  mtimeMs: mtimeArb,
});

const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  op: fc.constantFrom(...MUTATIONS),
  pick: fc.nat(),
  name: nameArb,
  file: smallFileArb,
  mode: fileModeArb,
  dirMode: dirModeArb,
  mtimeMs: mtimeArb,
  target: linkTargetArb,
});

/** A mutation with plain defaults, for hand-written examples. */
function mutation(op: Mutation['op'], over: Partial<Mutation> = {}): Mutation {
  return {
    op,
    pick: 0,
    name: 'added',
    file: file(3, 1),
    mode: 0o600,
    dirMode: 0o755,
    mtimeMs: 1_200_000_000_000,
    target: 'elsewhere',
    ...over,
  };
}

/** Cases that once failed, run before the random ones. */
const B_EXAMPLES: [Tree, Mutation[]][] = [
  // A directory that held entries becomes a file.
  [
    new Map([
      [
        'x',
        dir([
          ['a', file(1, 1)],
          ['b', link('a')],
        ]),
      ],
    ]),
    [mutation('dir-to-file')],
  ],
  // A link whose mtime comes back 1 µs off from a seconds-as-double round trip.
  [new Map([['-', link('../../etc/passwd', 175_142_081_963)]]), [mutation('chmod')]],
  // Every kind of change at once.
  [
    new Map<string, TreeNode>([
      ['same', file(100, 1)],
      ['resized', file(100, 2)],
      ['flipped', file(100, 3)],
      ['touched', file(100, 4)],
      ['chmodded', file(100, 5)],
      ['to-dir', file(100, 6)],
      ['link', link('same')],
      [
        'd',
        dir([
          ['gone', file(1, 7)],
          ['kept', file(1, 8)],
        ]),
      ],
    ]),
    [
      mutation('modify-new-size', { key: 'resized' }),
      mutation('modify-same-size', { key: 'flipped' }),
      mutation('touch', { key: 'touched' }),
      mutation('chmod', { key: 'chmodded', mode: 0o640 }),
      mutation('file-to-dir', { key: 'to-dir' }),
      mutation('retarget-link', { key: 'link' }),
      mutation('delete-file', { key: 'd/gone' }),
      mutation('add-file', { key: 'd', name: 'new' }),
    ],
  ],
];

/** Kind and size of every entry below `root`, sorted by key. */
async function listKinds(root: string, prefix = ''): Promise<[string, string, number][]> {
  const out: [string, string, number][] = [];
  for (const name of (await fsp.readdir(path.join(root, prefix))).sort()) {
    const key = prefix === '' ? name : `${prefix}/${name}`;
    const st = await fsp.lstat(path.join(root, key));
    const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file';
    out.push([key, kind, st.size]);
    if (kind === 'dir') out.push(...(await listKinds(root, key)));
  }
  return out;
}

/**
 * Applies one mutation to the source tree. `before` is the source as last
 * synced: a new mtime never equals the old one of the same key, so the
 * quick check (size and mtime) is always able to see a change.
 */
async function mutate(root: string, m: Mutation, before: TreeSnapshot): Promise<void> {
  const all = await listKinds(root);
  const of = (...kinds: string[]): string[] =>
    all.filter(([, kind]) => kinds.includes(kind)).map(([key]) => key);
  const choose = (keys: string[]): string | undefined => {
    if (m.key !== undefined) return keys.includes(m.key) ? m.key : undefined;
    return keys.length === 0 ? undefined : keys[m.pick % keys.length];
  };
  const fresh = (key: string, mtimeMs: number): number =>
    before.get(key)?.mtimeMs === mtimeMs ? mtimeMs + 1000 : mtimeMs;
  const at = (key: string): string => path.join(root, key);
  const writable = async (key: string, fn: () => Promise<void>): Promise<void> => {
    const { mode } = await fsp.lstat(at(key));
    await fsp.chmod(at(key), (mode & 0o7777) | 0o200);
    await fn();
    await fsp.chmod(at(key), mode & 0o7777);
  };

  switch (m.op) {
    case 'modify-same-size': {
      const key = choose(
        all.filter(([, kind, size]) => kind === 'file' && size > 0).map(([k]) => k),
      );
      if (key === undefined) return;
      const size = all.find(([k]) => k === key)![2];
      await writable(key, async () => {
        const fh = await fsp.open(at(key), 'r+');
        const pos = m.file.seed % size;
        const byte = Buffer.alloc(1);
        await fh.read(byte, 0, 1, pos);
        byte[0] = byte[0]! ^ 0xff;
        await fh.write(byte, 0, 1, pos);
        await fh.close();
      });
      return;
    }
    case 'modify-new-size': {
      const key = choose(of('file'));
      if (key === undefined) return;
      const size = all.find(([k]) => k === key)![2];
      await writable(key, async () => {
        if (size > 0 && m.file.seed % 2 === 1) await fsp.truncate(at(key), Math.floor(size / 2));
        else await fsp.appendFile(at(key), Buffer.alloc(m.file.size + 1, m.file.seed & 0xff));
      });
      return;
    }
    case 'touch': {
      const key = choose(of('file'));
      if (key === undefined) return;
      const t = new Date(fresh(key, m.mtimeMs));
      await fsp.utimes(at(key), t, t);
      return;
    }
    case 'chmod': {
      const key = choose(of('file'));
      if (key !== undefined) await fsp.chmod(at(key), m.mode);
      return;
    }
    case 'add-file':
    case 'add-dir':
    case 'add-link': {
      const parent = choose(['', ...of('dir')]);
      const key = parent === '' || parent === undefined ? m.name : `${parent}/${m.name}`;
      if (parent === undefined || all.some(([k]) => k === key)) return;
      if (m.op === 'add-file') {
        await writeFileNode(at(key), { ...m.file, mtimeMs: fresh(key, m.file.mtimeMs) });
      } else if (m.op === 'add-dir') {
        await fsp.mkdir(at(key), { mode: 0o700 });
        await fsp.chmod(at(key), m.dirMode);
      } else {
        await fsp.symlink(m.target, at(key));
        const t = new Date(m.mtimeMs);
        await fsp.lutimes(at(key), t, t);
      }
      return;
    }
    case 'delete-file':
    case 'delete-link': {
      const key = choose(of(m.op === 'delete-file' ? 'file' : 'symlink'));
      if (key !== undefined) await fsp.unlink(at(key));
      return;
    }
    case 'delete-dir': {
      const key = choose(of('dir'));
      if (key !== undefined) await fsp.rm(at(key), { recursive: true });
      return;
    }
    case 'file-to-dir': {
      const key = choose(of('file'));
      if (key === undefined) return;
      await fsp.unlink(at(key));
      await fsp.mkdir(at(key), { mode: m.dirMode });
      await fsp.chmod(at(key), m.dirMode);
      await writeFileNode(path.join(at(key), m.name), m.file);
      return;
    }
    case 'dir-to-file': {
      const key = choose(of('dir'));
      if (key === undefined) return;
      await fsp.rm(at(key), { recursive: true });
      await writeFileNode(at(key), { ...m.file, mtimeMs: fresh(key, m.file.mtimeMs) });
      return;
    }
    case 'retarget-link': {
      const key = choose(of('symlink'));
      if (key === undefined) return;
      const old = await fsp.readlink(at(key));
      await fsp.unlink(at(key));
      await fsp.symlink(m.target === old ? `${old}-retargeted` : m.target, at(key));
      return;
    }
  }
}

interface Expected {
  readonly counts: SyncSummary['files'];
  /** Files whose content did not change: the destination must not rewrite them. */
  readonly keptFiles: string[];
}

/** What an incremental sync from `before` (as synced) to `after` must do. */
function expectedRun(before: TreeSnapshot, after: TreeSnapshot): Expected {
  const counts = { copied: 0, updated: 0, deleted: 0, unchanged: 0, dirsCreated: 0, links: 0 };
  const keptFiles: string[] = [];
  for (const [key, a] of after) {
    const b = before.get(key);
    const metaChanged = b !== undefined && (b.mtimeMs !== a.mtimeMs || b.mode !== a.mode);
    if (a.kind === 'file') {
      if (b?.kind !== 'file' || b.sha256 !== a.sha256) counts.copied++;
      else {
        keptFiles.push(key);
        if (metaChanged) counts.updated++;
        else counts.unchanged++;
      }
    } else if (a.kind === 'dir') {
      if (b?.kind !== 'dir') counts.dirsCreated++;
      else if (b.mode !== a.mode) counts.updated++;
      else counts.unchanged++;
    } else if (a.kind === 'symlink') {
      if (b?.kind !== 'symlink' || b.target !== a.target) counts.links++;
      else if (b.mtimeMs !== a.mtimeMs) counts.updated++;
      else counts.unchanged++;
    }
  }
  for (const key of before.keys()) if (!after.has(key)) counts.deleted++;
  return { counts, keptFiles };
}

describe('sync between real directories (property)', () => {
  it(
    'A: a random tree synced into an empty directory comes out identical and verified',
    async () => {
      await fc.assert(
        fc.asyncProperty(treeArb(), async (tree) => {
          await withPair(async (pair) => {
            await writeTree(pair.src, tree);
            const source = await snapshotTree(pair.src);
            const summary = await sync('sync', pair);
            expectClean(summary);
            // The source is only read.
            expect(diffSnapshots(source, await snapshotTree(pair.src))).toEqual([]);
            await expectIdentical(pair);
            const stats = treeStats(tree);
            expect(summary.files).toMatchObject({
              copied: stats.files,
              links: stats.links,
              dirsCreated: stats.dirs,
              updated: 0,
              deleted: 0,
            });
            expect(summary.bytes.copied).toBe(stats.bytes);
          });
        }),
        { numRuns: runs(15), examples: [[HAND_TREE]], interruptAfterTimeLimit: TIME_LIMIT_MS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'B, C: an incremental sync moves exactly the changes; the next one does nothing',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          treeArb({ maxTotalBytes: 12 * MiB }),
          fc.array(mutationArb, { minLength: 1, maxLength: 8 }),
          async (tree, mutations) => {
            await withPair(async (pair) => {
              await writeTree(pair.src, tree);
              expectClean(await sync('sync', pair));
              const before = await expectIdentical(pair);
              const inodes = await inodesOf(pair.dst);

              for (const m of mutations) await mutate(pair.src, m, before);
              const after = await snapshotTree(pair.src);
              const expected = expectedRun(before, after);

              const second = await sync('sync', pair);
              expectClean(second);
              await expectIdentical(pair);
              // `unchanged` is left out: a touched file found equal counts as
              // both unchanged and updated.
              expect({
                copied: second.files.copied,
                updated: second.files.updated,
                deleted: second.files.deleted,
                dirsCreated: second.files.dirsCreated,
                links: second.files.links,
              }).toEqual({
                copied: expected.counts.copied,
                updated: expected.counts.updated,
                deleted: expected.counts.deleted,
                dirsCreated: expected.counts.dirsCreated,
                links: expected.counts.links,
              });
              const now = await inodesOf(pair.dst);
              const rewritten = expected.keptFiles.filter((k) => now.get(k) !== inodes.get(k));
              expect(rewritten).toEqual([]);

              // C: nothing changed since, nothing to do.
              const third = await sync('sync', pair);
              expectClean(third);
              expect(third.files).toMatchObject({
                copied: 0,
                updated: 0,
                deleted: 0,
                dirsCreated: 0,
                links: 0,
              });
              expect(third.files.unchanged).toBe(after.size);
              await expectIdentical(pair);
            });
          },
        ),
        { numRuns: runs(15), examples: B_EXAMPLES, interruptAfterTimeLimit: TIME_LIMIT_MS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'copy never deletes: extra destination entries survive untouched',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          treeArb({ maxTotalBytes: 4 * MiB }),
          treeArb({ maxTotalBytes: 1 * MiB, maxDepth: 3 }),
          async (tree, extraTree) => {
            await withPair(async (pair) => {
              const extra = disjoint(extraTree, tree);
              await writeTree(pair.src, tree);
              await writeTree(pair.dst, extra);
              const extraBefore = await snapshotTree(pair.dst);
              const source = await snapshotTree(pair.src);

              const summary = await sync('copy', pair);
              expectClean(summary);
              expect(summary.files.deleted).toBe(0);

              const dst = await snapshotTree(pair.dst);
              expect(tempKeys(dst)).toEqual([]);
              const onlySource = new Map([...dst].filter(([k]) => source.has(k)));
              expect(diffSnapshots(source, onlySource)).toEqual([]);
              // An extra entry keeps everything, but a directory that also
              // exists in the source takes the source's times and mode.
              const onlyExtra = new Map([...dst].filter(([k]) => !source.has(k)));
              const extraOnly = new Map([...extraBefore].filter(([k]) => !source.has(k)));
              expect(diffSnapshots(extraOnly, onlyExtra)).toEqual([]);
            });
          },
        ),
        { numRuns: runs(10), interruptAfterTimeLimit: TIME_LIMIT_MS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it('--mode full and --checksum see a change that kept size and mtime; incremental does not', async () => {
    const tree: Tree = new Map<string, TreeNode>([
      ['small.txt', file(1000, 1)],
      ['big.bin', file(9 * MiB, 2, 0o600)],
      [
        'other',
        dir([
          ['untouched.txt', file(500, 3)],
          ['also.bin', file(5 * MiB, 4)],
        ]),
      ],
    ]);
    await withPair(async (pair) => {
      await writeTree(pair.src, tree);
      expectClean(await sync('sync', pair));
      await expectIdentical(pair);
      const inodes = await inodesOf(pair.dst);

      /** Flips a byte of `key` and puts its mtime back, as a careless tool might. */
      const sneakyChange = async (key: string, pos: number): Promise<void> => {
        const p = path.join(pair.src, key);
        const { mtime, atime } = await fsp.stat(p);
        const fh = await fsp.open(p, 'r+');
        const byte = Buffer.alloc(1);
        await fh.read(byte, 0, 1, pos);
        byte[0] = byte[0]! ^ 0x5a;
        await fh.write(byte, 0, 1, pos);
        await fh.close();
        await fsp.utimes(p, atime, mtime);
      };
      await sneakyChange('small.txt', 999);
      await sneakyChange('big.bin', 6 * MiB + 7); // in the second 4 MiB block

      // The quick check trusts size and mtime, as rsync does.
      const quick = await sync('sync', pair);
      expectClean(quick);
      expect(quick.files).toMatchObject({ copied: 0, updated: 0, deleted: 0 });
      const stale = await verify(pair);
      expect(stale.equal).toBe(false);
      expect(stale.different).toEqual([
        { key: 'big.bin', reason: 'content differs' },
        { key: 'small.txt', reason: 'content differs' },
      ]);

      const full = await sync('sync', pair, { mode: 'full' });
      expectClean(full);
      expect(full.files).toMatchObject({ copied: 2, updated: 0, deleted: 0 });
      await expectIdentical(pair);
      const afterFull = await inodesOf(pair.dst);
      for (const key of ['other/untouched.txt', 'other/also.bin']) {
        expect(afterFull.get(key), key).toBe(inodes.get(key));
      }

      await sneakyChange('small.txt', 0);
      await sneakyChange('big.bin', 9 * MiB - 1);
      const checksum = await sync('sync', pair, { checksum: true });
      expectClean(checksum);
      expect(checksum.files).toMatchObject({ copied: 2, updated: 0, deleted: 0 });
      await expectIdentical(pair);
      const afterChecksum = await inodesOf(pair.dst);
      for (const key of ['other/untouched.txt', 'other/also.bin']) {
        expect(afterChecksum.get(key), key).toBe(inodes.get(key));
      }
    });
  });

  it('keeps mtimes before 1970 (files, directories, links)', async () => {
    const tree: Tree = new Map<string, TreeNode>([
      ['old file', file(10, 1, 0o644, -DAY)],
      ['old dir', dir([['inner', file(1, 2)]], 0o755, -1)],
      ['old link', link('old file', -1500)],
      ['moon landing', file(5, 3, 0o644, -14_182_940_000)],
    ]);
    await withPair(async (pair) => {
      await writeTree(pair.src, tree);
      expectClean(await sync('sync', pair));
      await expectIdentical(pair);
    });
  });

  // Root ignores permission bits, so only another user sees this.
  it.skipIf(process.getuid?.() === 0)(
    'syncs read-only directories and files (skipped as root, which ignores permissions)',
    async () => {
      const tree: Tree = new Map<string, TreeNode>([
        [
          'read-only',
          dir(
            [
              ['file', file(10, 1, 0o444)],
              ['sub', dir([['x', file(1, 2, 0o400)]], 0o500)],
            ],
            0o555,
          ),
        ],
      ]);
      await withPair(async (pair) => {
        await writeTree(pair.src, tree);
        expectClean(await sync('sync', pair));
        await expectIdentical(pair);
      });
    },
  );
});

/** `extra` without the entries that would collide with `tree` (same key, or a kind conflict). */
function disjoint(extra: Tree, tree: Tree): Tree {
  const out = new Map<string, TreeNode>();
  for (const [name, node] of extra) {
    const other = tree.get(name);
    if (other === undefined) out.set(name, node);
    else if (other.kind === 'dir' && node.kind === 'dir') {
      out.set(name, { ...node, children: disjoint(node.children, other.children) });
    }
  }
  return out;
}
