/**
 * The native directory listing against Node's own readdir and lstat: a
 * walk of the same odd tree gives the same entries (kind, size, mtime to
 * the nanosecond, mode, link target), the same temp files and the same
 * problems either way.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type * as fsTree from './fs-tree.js';
import type { WalkBatch } from './fs-worker-protocol.js';

type FsTree = typeof fsTree;

let root: string;

/** Imports fs-tree.js afresh, with the native listing on or off. */
async function loadTree(native: boolean): Promise<{ tree: FsTree; loaded: boolean }> {
  vi.resetModules();
  vi.stubEnv('TONGBU_NATIVE', native ? '1' : '0');
  try {
    const tree = await import('./fs-tree.js');
    const { native: loaded } = await import('../../core/native.js');
    return { tree, loaded: loaded !== undefined };
  } finally {
    vi.unstubAllEnvs();
  }
}

/** Everything a walk of `root` posts, keyed and sorted so that order does not count. */
function walk(
  tree: FsTree,
  at: string,
): {
  entries: Record<string, number[] | string>;
  temps: string[];
  problems: string[];
} {
  const entries: Record<string, number[] | string> = {};
  const temps: string[] = [];
  const problems: string[] = [];
  const port = {
    postMessage(batch: WalkBatch): void {
      batch.keys.forEach((key, i) => {
        entries[key] = Array.from(batch.nums.subarray(4 * i, 4 * i + 4));
      });
      batch.links.forEach((i, n) => {
        entries[`${batch.keys[i]} ->`] = batch.targets[n]!;
      });
      temps.push(...batch.temps);
      for (const p of batch.problems) {
        problems.push(JSON.stringify({ ...p, ...('raw' in p ? { raw: [...p.raw] } : {}) }));
      }
    },
  };
  const out = new tree.Batcher(port, 0, 0);
  tree.walkTree(at, out, () => false);
  out.post();
  return { entries, temps: temps.sort(), problems: problems.sort() };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tongbu-native-dir-'));
  const at = (p: string): string => join(root, p);
  fs.mkdirSync(at('a/b/c/d'), { recursive: true });
  fs.mkdirSync(at('empty'));
  fs.writeFileSync(at('a/zero'), '');
  fs.writeFileSync(at('a/b/c/d/deep'), 'deep');
  fs.writeFileSync(at('a/exec'), '#!/bin/sh\n', { mode: 0o755 });
  fs.chmodSync(at('a/exec'), 0o4755);
  fs.writeFileSync(at('tab\tand\\back'), 'x');
  fs.writeFileSync(at('caf\u0065\u0301'), 'nfd');
  fs.writeFileSync(at('日本語.txt'), 'utf8');
  fs.symlinkSync('a/zero', at('link'));
  fs.symlinkSync('/nowhere/at/all', at('a/dangling'));
  // A sparse file past 4 GiB, and nanosecond mtimes.
  const big = fs.openSync(at('big'), 'w');
  fs.ftruncateSync(big, 5 * 2 ** 30 + 7);
  fs.closeSync(big);
  execFileSync('touch', ['-d', '2024-02-29 12:34:56.123456789', at('a/zero'), at('big')]);
  fs.writeFileSync(at('a/.tongbu-tmp-leftover'), 'partial');
  execFileSync('mkfifo', [at('a/fifo')]);
  // Names that are not UTF-8: one directory holds one among valid names.
  fs.mkdirSync(at('bytes'));
  fs.writeFileSync(
    Buffer.concat([Buffer.from(`${at('bytes')}/`), Buffer.from([0x66, 0xff])]),
    'bad',
  );
  fs.writeFileSync(at('bytes/good'), 'good');
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('the native directory listing', () => {
  it('is built and loaded where CI runs', async () => {
    const { loaded } = await loadTree(true);
    if (process.env['TONGBU_REQUIRE_SERVICES'] === '1') expect(loaded).toBe(true);
    const { loaded: off } = await loadTree(false);
    expect(off).toBe(false);
  });

  it('walks a tree exactly as readdir and lstat do', async ({ skip }) => {
    const native = await loadTree(true);
    if (!native.loaded) skip('native listing not built (npm run build:native)');
    const plain = await loadTree(false);
    const got = walk(native.tree, root);
    const want = walk(plain.tree, root);
    expect(got).toEqual(want);
    // What the walk must have seen, so that equal-but-empty cannot pass.
    expect(Object.keys(want.entries)).toEqual(
      expect.arrayContaining([
        'a/b/c/d/deep',
        'big',
        'link ->',
        'bytes/good',
        'empty',
        'caf\u0065\u0301',
      ]),
    );
    expect(want.entries['big']![1]).toBe(5 * 2 ** 30 + 7);
    expect(want.entries['a/exec']![3]).toBe(0o4755);
    expect(want.temps).toEqual([join(root, 'a/.tongbu-tmp-leftover')]);
    expect(want.problems.map((p) => (JSON.parse(p) as { code: string }).code).sort()).toEqual([
      'NOT_UTF8',
      'SPECIAL',
    ]);
  });

  it('reports a directory that is not there as empty, and a file given as one as empty', async () => {
    const { tree, loaded } = await loadTree(true);
    expect(walk(tree, join(root, 'missing'))).toEqual({ entries: {}, temps: [], problems: [] });
    expect(walk(tree, join(root, 'a/zero'))).toEqual({ entries: {}, temps: [], problems: [] });
    if (loaded) {
      const { native } = await import('../../core/native.js');
      expect(() => native!.listDir(join(root, 'missing'))).toThrow(/^ENOENT: .* scandir/);
    }
  });
});
