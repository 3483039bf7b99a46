/**
 * Bulk copy between local trees, as the sync engine drives it: what lands
 * is checked byte for byte, with its mtime and mode, and every item gets
 * exactly one outcome.
 */
import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TongbuError } from '../../core/errors.js';
import { hashBytes } from '../../core/hash.js';
import type { LocalCopyItem, LocalCopyOutcome } from '../endpoint.js';
import { entryOf } from './fs-entry.js';
import { FsEndpoint } from './fs-endpoint.js';
import { TEMP_PREFIX } from './fs-temp.js';

const T = Date.UTC(2025, 2, 3) / 1000;

let dir: string;
let src: string;
let dst: FsEndpoint;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tongbu-local-copy-'));
  src = join(dir, 'src');
  fs.mkdirSync(src);
  dst = new FsEndpoint(join(dir, 'dst'), { workers: 2 });
  await dst.open({ create: true });
});

afterEach(async () => {
  await dst.close();
  await rm(dir, { recursive: true, force: true });
});

/** Writes a file under `root` with a fixed mtime and mode. */
function put(root: string, key: string, bytes: Uint8Array, mode = 0o644, mtime = T): void {
  fs.mkdirSync(join(root, key, '..'), { recursive: true });
  fs.writeFileSync(join(root, key), bytes);
  fs.chmodSync(join(root, key), mode);
  fs.utimesSync(join(root, key), mtime, mtime);
}

function item(key: string, extra: Partial<LocalCopyItem> = {}): LocalCopyItem {
  return { source: entryOf(key, fs.lstatSync(join(src, key)), undefined), ...extra };
}

/** Copies the items; every outcome, by key (one each, or the test fails). */
async function copy(items: LocalCopyItem[]): Promise<Map<string, LocalCopyOutcome>> {
  for (const { source } of items) {
    fs.mkdirSync(join(dst.localPath, source.key, '..'), { recursive: true });
  }
  const outcomes = new Map<string, LocalCopyOutcome>();
  await dst.copyFromLocal(src, items, {
    algorithm: 'blake3',
    onOutcome: (outcome) => {
      expect(outcomes.has(outcome.item.source.key)).toBe(false);
      outcomes.set(outcome.item.source.key, outcome);
    },
  });
  expect([...outcomes.keys()].sort()).toEqual(items.map((i) => i.source.key).sort());
  return outcomes;
}

function tempFiles(): string[] {
  return fs
    .readdirSync(dst.localPath, { recursive: true, encoding: 'utf8' })
    .filter((p) => p.split('/').some((name) => name.startsWith(TEMP_PREFIX)));
}

const bytesOf = (seed: number, size: number): Buffer =>
  Buffer.from(Array.from({ length: size }, (_, i) => (seed * 31 + i * 7) % 251));

describe('copyFromLocal', () => {
  it('copies small files by directory groups and a large one alone, content, mtime and mode', async () => {
    const files = new Map<string, Buffer>();
    const sizes: [string, number][] = [
      ['a', 150],
      ['b/c', 70],
      ['d', 1],
    ];
    for (const [d, count] of sizes) {
      for (let i = 0; i < count; i++) files.set(`${d}/f${i}`, bytesOf(i, 100 + (i % 7) * 300));
    }
    files.set('top', bytesOf(1, 10));
    files.set('b/empty', Buffer.alloc(0));
    files.set('big', bytesOf(2, 9 << 20));
    for (const [key, bytes] of files) put(src, key, bytes, key === 'top' ? 0o600 : 0o644);

    const outcomes = await copy([...files.keys()].map((key) => item(key)));
    for (const [key, bytes] of files) {
      const outcome = outcomes.get(key)!;
      if (!outcome.ok) throw outcome.error;
      expect(outcome.unchanged).toBe(false);
      expect(outcome.result.hash).toBe(hashBytes(bytes, 'blake3'));
      expect(fs.readFileSync(join(dst.localPath, key)).equals(bytes)).toBe(true);
      const stat = fs.statSync(join(dst.localPath, key));
      expect(stat.mtimeMs).toBe(T * 1000);
      expect(stat.mode & 0o7777).toBe(key === 'top' ? 0o600 : 0o644);
    }
    expect(tempFiles()).toEqual([]);
  });

  it('compares before writing: an equal file is left as it is, a different one replaced', async () => {
    put(src, 'same', bytesOf(3, 5000));
    put(src, 'other', bytesOf(4, 5000));
    put(dst.localPath, 'same', bytesOf(3, 5000), 0o644, T - 60);
    put(dst.localPath, 'other', bytesOf(5, 5000), 0o644, T - 60);
    const before = fs.statSync(join(dst.localPath, 'same'));

    const outcomes = await copy([
      item('same', { compare: true }),
      item('other', { compare: true }),
    ]);
    expect(outcomes.get('same')).toMatchObject({ ok: true, unchanged: true });
    expect(outcomes.get('other')).toMatchObject({ ok: true, unchanged: false });
    const same = fs.statSync(join(dst.localPath, 'same'));
    expect([same.ino, same.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    expect(fs.readFileSync(join(dst.localPath, 'other')).equals(bytesOf(4, 5000))).toBe(true);
    expect(tempFiles()).toEqual([]);
  });

  it('checks an expected hash in its own algorithm and refuses content that does not match', async () => {
    put(src, 'good', bytesOf(6, 700));
    put(src, 'bad', bytesOf(7, 700));
    const outcomes = await copy([
      item('good', { expectedHash: hashBytes(bytesOf(6, 700), 'sha256') }),
      item('bad', { expectedHash: hashBytes(bytesOf(8, 700), 'sha256') }),
    ]);
    expect(outcomes.get('good')).toMatchObject({
      ok: true,
      result: { hash: hashBytes(bytesOf(6, 700), 'sha256') },
    });
    const bad = outcomes.get('bad')!;
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.error instanceof TongbuError && bad.error.code).toBe('HASH_MISMATCH');
    expect(fs.existsSync(join(dst.localPath, 'bad'))).toBe(false);
    expect(tempFiles()).toEqual([]);
  });
});
