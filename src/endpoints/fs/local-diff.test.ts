/**
 * The paired walk against the two trees listed whole: the same directories,
 * the same differing entries and the same count of equal ones, whether the
 * main thread walks alone or workers take shares.
 */
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Key } from '../../core/key.js';
import type { Entry } from '../endpoint.js';
import { FsEndpoint } from './fs-endpoint.js';
import { FsWorkerPool } from './fs-worker-pool.js';
import { diffLocalTrees, type WalkPace } from './local-diff.js';

const T = Date.UTC(2025, 5, 1) / 1000;
const TOLERANCE_MS = 0.002;

let dir: string;
let src: string;
let dst: string;
const tempFiles: string[] = [];

/**
 * Two trees of 60 directories (some nested, some on one side only) whose
 * files and links are equal or differ by size, mtime, mode, link target or
 * kind; the destination also holds temp files of an interrupted run.
 */
function writeTrees(): void {
  const file = (root: string, key: string, bytes: number, mtime: number, mode = 0o644): void => {
    fs.writeFileSync(join(root, key), Buffer.alloc(bytes, 1), { mode });
    fs.chmodSync(join(root, key), mode);
    fs.utimesSync(join(root, key), mtime, mtime);
  };
  for (let d = 0; d < 60; d++) {
    const sub = d % 7 === 0 ? `d${d}/inner/deeper` : `d${d}`;
    const sides = d % 11 === 3 ? [src] : d % 11 === 5 ? [dst] : [src, dst];
    for (const root of sides) fs.mkdirSync(join(root, sub), { recursive: true });
    for (let f = 0; f < 25; f++) {
      const key = `${sub}/f${f}`;
      for (const root of sides) file(root, key, f, T);
      if (sides.length === 1) continue;
      const change = (d * 25 + f) % 13;
      if (change === 1) file(dst, key, f + 1, T);
      if (change === 2) file(dst, key, f, T + 1);
      if (change === 3) file(dst, key, f, T, 0o600);
      if (change === 4) {
        fs.rmSync(join(dst, key));
        fs.mkdirSync(join(dst, key, 'below'), { recursive: true });
        file(dst, `${key}/below/x`, 3, T);
      }
      if (change === 5) {
        fs.rmSync(join(src, key));
        fs.mkdirSync(join(src, key));
        file(src, `${key}/y`, 4, T);
      }
      if (change === 6) {
        for (const root of [src, dst]) fs.rmSync(join(root, key));
        fs.symlinkSync('target-a', join(src, key));
        fs.symlinkSync(f % 2 === 0 ? 'target-a' : 'target-b', join(dst, key));
        for (const root of [src, dst]) fs.lutimesSync(join(root, key), T, T);
      }
      if (change === 7) fs.rmSync(join(dst, key));
      if (change === 8) {
        tempFiles.push(join(dst, sub, `.tongbu-tmp-${f}`));
        fs.writeFileSync(tempFiles.at(-1)!, 'partial');
      }
    }
  }
}

async function listWhole(root: string): Promise<Map<Key, Entry>> {
  const endpoint = new FsEndpoint(root);
  const entries = new Map<Key, Entry>();
  try {
    for await (const batch of endpoint.list()) for (const e of batch) entries.set(e.key, e);
  } finally {
    await endpoint.close();
  }
  return entries;
}

function same(a: Entry, b: Entry): boolean {
  if (a.kind !== b.kind || Math.abs(a.mtimeMs - b.mtimeMs) > TOLERANCE_MS) return false;
  if (a.kind === 'symlink') return a.target === b.target;
  return a.size === b.size && a.mode === b.mode;
}

/** What the paired walk must report, from the two whole listings. */
function expectedDiff(
  source: Map<Key, Entry>,
  dest: Map<Key, Entry>,
): { source: Map<Key, Entry>; dest: Map<Key, Entry>; unchanged: number } {
  const equal = (key: Key, e: Entry, other: Map<Key, Entry>): boolean => {
    const o = other.get(key);
    return e.kind !== 'dir' && o !== undefined && same(e, o);
  };
  return {
    source: new Map([...source].filter(([k, e]) => !equal(k, e, dest))),
    dest: new Map([...dest].filter(([k, e]) => !equal(k, e, source))),
    unchanged: [...source].filter(([k, e]) => equal(k, e, dest)).length,
  };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tongbu-local-diff-'));
  src = join(dir, 'src');
  dst = join(dir, 'dst');
  writeTrees();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the paired walk', () => {
  it.each<[string, { pace?: WalkPace; workerStarted?: boolean }]>([
    ['as paced for a run', {}],
    [
      'with a started worker taking shares from the first directory on',
      { pace: { sliceMs: 0, helpFromMs: 0 }, workerStarted: true },
    ],
    ['by the main thread alone', { pace: { sliceMs: Infinity, helpFromMs: Infinity } }],
  ])('reports what the whole listings differ in, %s', async (_, { pace, workerStarted }) => {
    const expected = expectedDiff(await listWhole(src), await listWhole(dst));
    expect(expected.unchanged).toBeGreaterThan(500);
    const pool = new FsWorkerPool(4);
    if (workerStarted) await pool.rename({ dstRoot: dst, keys: [], temps: [] });
    const diffs = vi.spyOn(pool, 'diff');
    const temps: string[] = [];
    try {
      const diff = await diffLocalTrees(
        pool,
        src,
        dst,
        {
          toleranceMs: TOLERANCE_MS,
          onProblem: (_side, e) => {
            throw e;
          },
        },
        (paths) => temps.push(...paths),
        pace,
      );
      expect(Object.fromEntries(diff.source)).toEqual(Object.fromEntries(expected.source));
      expect(Object.fromEntries(diff.dest)).toEqual(Object.fromEntries(expected.dest));
      expect(diff.unchanged).toBe(expected.unchanged);
      expect(temps.sort()).toEqual([...tempFiles].sort());
      // One core: the main thread walks alone.
      const shares = diffs.mock.calls.filter(([task]) => task.dirs.length > 0).length;
      if (workerStarted && availableParallelism() > 1) expect(shares).toBeGreaterThan(0);
      if (pace?.helpFromMs === Infinity) expect(shares).toBe(0);
    } finally {
      await pool.close();
    }
  });
});
