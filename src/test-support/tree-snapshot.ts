/**
 * Snapshots of a directory tree for tests that compare two trees: every
 * entry below the root by relative POSIX path, seen with lstat (links are
 * never followed), with kind, permission bits, size, mtime to the
 * millisecond, content hash and link target. Nothing is skipped: a leftover
 * temp file shows up, so a test can assert there is none.
 */
import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

export interface SnapshotEntry {
  readonly kind: 'file' | 'dir' | 'symlink' | 'other';
  /** mode & 0o7777 */
  readonly mode: number;
  /** Bytes of a file; 0 for the rest (a directory's size is the filesystem's business). */
  readonly size: number;
  /** Rounded to the millisecond. */
  readonly mtimeMs: number;
  /** Hex sha256 of a file's content. */
  readonly sha256?: string;
  readonly target?: string;
}

export type TreeSnapshot = Map<string, SnapshotEntry>;

/** Every entry below `root` (not `root` itself). */
export async function snapshotTree(root: string): Promise<TreeSnapshot> {
  const out: TreeSnapshot = new Map();
  await walk(root, '', async (key, p, stat) => {
    const base = { mode: stat.mode & 0o7777, mtimeMs: Math.round(stat.mtimeMs) };
    if (stat.isFile()) {
      out.set(key, { kind: 'file', ...base, size: stat.size, sha256: await sha256File(p) });
    } else if (stat.isDirectory()) {
      out.set(key, { kind: 'dir', ...base, size: 0 });
    } else if (stat.isSymbolicLink()) {
      out.set(key, { kind: 'symlink', ...base, size: 0, target: await fsp.readlink(p) });
    } else {
      out.set(key, { kind: 'other', ...base, size: 0 });
    }
  });
  return out;
}

/** Inode numbers of every entry below `root`, to tell a rewritten file from one left alone. */
export async function inodesOf(root: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  await walk(root, '', (key, _p, stat) => {
    out.set(key, stat.ino);
    return Promise.resolve();
  });
  return out;
}

/** Keys whose last segment marks a temp file of the fs endpoint. */
export function tempKeys(snapshot: TreeSnapshot): string[] {
  return [...snapshot.keys()].filter((k) => path.posix.basename(k).startsWith('.tongbu-tmp-'));
}

/**
 * Differences between two snapshots, one readable line each (empty when
 * they are equal): what a test prints when trees should be identical.
 */
export function diffSnapshots(expected: TreeSnapshot, actual: TreeSnapshot): string[] {
  const out: string[] = [];
  for (const [key, e] of expected) {
    const a = actual.get(key);
    if (a === undefined) {
      out.push(`missing ${JSON.stringify(key)} (${e.kind})`);
      continue;
    }
    for (const field of ['kind', 'mode', 'size', 'mtimeMs', 'sha256', 'target'] as const) {
      if (e[field] !== a[field]) {
        const show = (v: unknown): string =>
          field === 'mode' && typeof v === 'number' ? `0o${v.toString(8)}` : JSON.stringify(v);
        out.push(
          `${JSON.stringify(key)} (${e.kind}): ${field} ${show(e[field])} expected, ${show(a[field])} found`,
        );
      }
    }
  }
  for (const [key, a] of actual) {
    if (!expected.has(key)) out.push(`extra ${JSON.stringify(key)} (${a.kind})`);
  }
  return out;
}

async function walk(
  dir: string,
  prefix: string,
  visit: (key: string, p: string, stat: Stats) => Promise<void>,
): Promise<void> {
  const names = (await fsp.readdir(dir)).sort();
  for (const name of names) {
    const p = path.join(dir, name);
    const key = prefix === '' ? name : `${prefix}/${name}`;
    const stat = await fsp.lstat(p);
    await visit(key, p, stat);
    if (stat.isDirectory()) await walk(p, key, visit);
  }
}

async function sha256File(p: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(p)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
