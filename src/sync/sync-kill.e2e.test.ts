/**
 * End-to-end: `tongbu sync` killed with SIGKILL at random moments, each re-run
 * continuing from the partial destination and the same state file. At every
 * kill point a visible destination file must be whole; the final run must
 * finish the job without redoing it, leaving a byte-identical tree (modes and
 * mtimes too) and no temp files.
 */
import { createCipheriv, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  assertBuilt,
  diffTrees,
  findTemps,
  makeTempDir,
  parseJsonOutput,
  removeTempDirs,
  runCli,
  sleep,
  snapshotTree,
  startCli,
  TEMP_PREFIX,
  type CliResult,
} from '../test-support/cli.js';

const SMALL_FILES = 3000;
const DIRS = 30;
const LARGE_FILES = 3;
const LARGE_SIZE = 24 << 20;
const KILLS = 6;
const MIN_DELAY_MS = 20;
const T0 = 1_700_000_000_000;

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `size` pseudo-random bytes determined by `name` (AES-CTR keystream). */
function contentOf(name: string, size: number): Buffer {
  const key = createHash('sha256').update(name).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return cipher.update(Buffer.alloc(size));
}

/** Writes the source tree; returns sha256 hex and size of every file by key. */
function makeSource(root: string): Map<string, { sha256: string; size: number }> {
  const files = new Map<string, { sha256: string; size: number }>();
  const rand = prng(0x7b0b);
  const put = (key: string, size: number, mode: number, mtimeMs: number): void => {
    const bytes = contentOf(key, size);
    const p = path.join(root, key);
    fs.writeFileSync(p, bytes, { mode });
    fs.chmodSync(p, mode);
    fs.utimesSync(p, mtimeMs / 1000, mtimeMs / 1000);
    files.set(key, { sha256: createHash('sha256').update(bytes).digest('hex'), size });
  };
  fs.mkdirSync(root, { recursive: true });
  for (let d = 0; d < DIRS; d++) fs.mkdirSync(path.join(root, `d${String(d).padStart(2, '0')}`));
  for (let i = 0; i < SMALL_FILES; i++) {
    const dir = `d${String(i % DIRS).padStart(2, '0')}`;
    const size = 1024 + Math.floor(rand() * 15 * 1024);
    const mode = i % 7 === 0 ? 0o600 : i % 11 === 0 ? 0o640 : 0o644;
    put(`${dir}/f${String(i).padStart(4, '0')}.bin`, size, mode, T0 + i * 1000 + 123);
  }
  for (let i = 0; i < LARGE_FILES; i++) put(`large${i}.bin`, LARGE_SIZE, 0o644, T0 - i * 7000);
  for (let d = 0; d < DIRS; d++) {
    const p = path.join(root, `d${String(d).padStart(2, '0')}`);
    fs.chmodSync(p, d % 5 === 0 ? 0o750 : 0o755);
    fs.utimesSync(p, T0 / 1000 + d, T0 / 1000 + d);
  }
  return files;
}

/**
 * Checks that every visible (non-temp) destination file is whole: a source
 * file, byte for byte. Returns how many files are visible and how many temps.
 */
function checkVisible(
  dst: string,
  expected: ReadonlyMap<string, { sha256: string; size: number }>,
): { visible: number; temps: number } {
  if (!fs.existsSync(dst)) return { visible: 0, temps: 0 };
  let visible = 0;
  let temps = 0;
  for (const [key, entry] of snapshotTree(dst)) {
    if (entry.kind !== 'file') continue;
    if (path.posix.basename(key).startsWith(TEMP_PREFIX)) {
      temps++;
      continue;
    }
    const want = expected.get(key);
    expect(want, `unexpected file ${key} at the destination`).toBeDefined();
    expect({ key, size: entry.size, sha256: entry.sha256 }).toEqual({ key, ...want });
    visible++;
  }
  return { visible, temps };
}

/** Whether any staged small file has been renamed into place (the commit has begun). */
function smallFileVisible(dst: string): boolean {
  for (let d = 0; d < DIRS; d += 10) {
    const dir = path.join(dst, `d${String(d).padStart(2, '0')}`);
    if (!fs.existsSync(dir)) continue;
    if (fs.readdirSync(dir).some((n) => !n.startsWith(TEMP_PREFIX))) return true;
  }
  return false;
}

interface Summary {
  files: { copied: number; unchanged: number };
  errors: unknown[];
  removedTemps: number;
}

let work: string;
beforeAll(async () => {
  assertBuilt();
  work = await makeTempDir('tongbu-kill-');
});
afterAll(removeTempDirs);

describe('sync killed with SIGKILL', () => {
  it('never shows a partial file and resumes without redoing verified work', async () => {
    const src = path.join(work, 'src');
    const dst = path.join(work, 'dst');
    const state = path.join(work, 'state.db');
    const expected = makeSource(src);
    const total = expected.size;
    const sync = (to: string, db: string): string[] => ['sync', src, to, '--state', db, '--json'];

    // How long an uninterrupted run takes here, to spread the kills over it.
    const calibration = await runCli(sync(path.join(work, 'calibration'), `${state}.cal`));
    expect(calibration.code, calibration.stderr).toBe(0);
    fs.rmSync(path.join(work, 'calibration'), { recursive: true });
    const fullMs = Math.max(calibration.durationMs, MIN_DELAY_MS * 4);

    const seed = Number(process.env['TONGBU_KILL_SEED'] ?? Date.now() % 1_000_000);
    const rand = prng(seed);
    const log: string[] = [];
    const note = (line: string): void => void log.push(line);
    onTestFinished(() => console.log(log.join('\n')));
    note(`seed ${seed} (TONGBU_KILL_SEED), full run ${Math.round(fullMs)} ms`);
    // Kills at random moments, then one aimed at the commit of the staged small
    // files (it lands as soon as one of them is visible). A run that finishes
    // before its kill does not count; later delays are then drawn below its duration.
    let kills = 0;
    let completed = 0;
    let upper = 0.9 * fullMs;
    for (let attempt = 1; kills < KILLS && attempt <= 3 * KILLS; attempt++) {
      const aimed = kills === KILLS - 1;
      const run = startCli(sync(dst, state));
      let result: CliResult | undefined;
      void run.done.then((r) => (result = r));
      if (!aimed) {
        await sleep(MIN_DELAY_MS + rand() * Math.max(0, upper - MIN_DELAY_MS));
      } else {
        while (result === undefined && !smallFileVisible(dst)) await sleep(1);
      }
      run.child.kill('SIGKILL');
      const r = await run.done;
      if (r.signal === null) {
        completed++;
        expect(r.code, r.stderr).toBe(0); // finished before the kill: it must have succeeded
        upper = Math.max(2 * MIN_DELAY_MS, 0.9 * r.durationMs);
      } else {
        kills++;
      }
      const seen = checkVisible(dst, expected);
      note(
        `run ${attempt}${aimed ? ' (aimed at the commit)' : ''}: ` +
          `${r.signal ?? `exit ${r.code}`} after ${Math.round(r.durationMs)} ms, ` +
          `${seen.visible} files visible, ${seen.temps} temps`,
      );
    }
    note(`${kills} kills, ${completed} runs finished before their kill`);
    expect(kills, log.join('\n')).toBe(KILLS);

    const before = checkVisible(dst, expected);
    const final = await runCli(sync(dst, state));
    note(`final: exit ${final.code} in ${Math.round(final.durationMs)} ms`);
    expect(final.code, final.stderr).toBe(0);
    const summary = parseJsonOutput<Summary>(final.stdout);
    expect(summary.errors).toEqual([]);
    expect(before.visible).toBeGreaterThan(0);
    // Files already whole at the destination are not copied again.
    expect(summary.files.copied).toBeLessThanOrEqual(total - before.visible);
    expect(summary.files.copied).toBeLessThan(total);

    expect(findTemps(dst)).toEqual([]);
    const verify = await runCli(['verify', src, dst]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(diffTrees(snapshotTree(src), snapshotTree(dst))).toEqual([]);
  });
});
