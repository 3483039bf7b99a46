/**
 * Garbage collection with a retention rule. Kept: every tagged commit, and on
 * each branch the newest `keepLast` commits plus those younger than
 * `keepDays`. Marked: those commits, their trees, manifests and chunks.
 * Swept: every other object not touched within the grace period. An upload in
 * flight touches every chunk it is told the node has (`missing`), and writes
 * new ones, so nothing it still needs is older than the grace period.
 */
import type { ContentHash } from '../core/hash.js';
import type { Commit } from './commit.js';
import { decodeManifest } from './manifest.js';
import { readNode } from './prolly-node.js';
import type { Store } from './store.js';
import { fromTreeValue } from './stored-entry.js';

export interface RetentionRule {
  /** Newest commits kept on each branch (at least 1: the head). */
  readonly keepLast: number;
  /** Commits younger than this many days are kept too. */
  readonly keepDays: number;
  /** Objects touched within this many ms are never removed. */
  readonly graceMs: number;
  readonly dryRun?: boolean;
}

export interface GcReport {
  readonly commitsKept: number;
  readonly objectsKept: number;
  readonly objectsRemoved: number;
  readonly bytesRemoved: number;
  readonly objectsInGrace: number;
  /** Disk space given back (pack stores reclaim space by compacting). */
  readonly bytesReclaimed: number;
}

export async function collectGarbage(
  store: Store,
  rule: RetentionRule,
  now = Date.now(),
): Promise<GcReport> {
  const marked = new Set<ContentHash>();
  const commits = new Set<ContentHash>();
  for (const ns of await store.catalog.listNamespaces()) {
    for (const ref of await store.catalog.listRefs(ns)) {
      if (ref.name.startsWith('tags/')) {
        commits.add(ref.commit);
        continue;
      }
      let next: ContentHash | undefined = ref.commit;
      for (let n = 0; next !== undefined; n++) {
        const commit: Commit | undefined = await store.readCommit(next).catch(() => undefined);
        if (!commit) break; // history truncated by an earlier gc
        const young = now - commit.timeMs < rule.keepDays * 86_400_000;
        if (n >= Math.max(1, rule.keepLast) && !young) break;
        commits.add(next);
        next = commit.parents[0];
      }
    }
  }
  for (const c of commits) {
    marked.add(c);
    await markTree(store, (await store.readCommit(c)).root, marked);
  }
  let removed = 0;
  let bytes = 0;
  let inGrace = 0;
  for (const e of store.chunks.entries()) {
    if (marked.has(e.hash)) continue;
    if (now - e.mtimeMs < rule.graceMs) {
      inGrace++;
      continue;
    }
    if (!rule.dryRun) store.chunks.remove(e.hash, now - rule.graceMs);
    removed++;
    bytes += e.size;
  }
  const reclaimed = !rule.dryRun && store.chunks.compact ? await store.chunks.compact() : undefined;
  return {
    bytesReclaimed: reclaimed?.bytesReclaimed ?? 0,
    commitsKept: commits.size,
    objectsKept: marked.size,
    objectsRemoved: removed,
    bytesRemoved: bytes,
    objectsInGrace: inGrace,
  };
}

/** Marks a tree's nodes and everything its entries reference; shared subtrees once. */
async function markTree(store: Store, root: ContentHash, marked: Set<ContentHash>): Promise<void> {
  if (marked.has(root)) return;
  marked.add(root);
  const node = await readNode(store.chunks, root);
  if (node.level > 0) {
    for (const child of node.children) await markTree(store, child, marked);
    return;
  }
  for (const value of node.values) {
    const e = fromTreeValue(value);
    if (e.kind !== 'file' || !e.data || marked.has(e.data)) continue;
    marked.add(e.data);
    if ((e.parts ?? 0) > 1) {
      for (const c of decodeManifest(await store.chunks.get(e.data))) marked.add(c.hash);
    }
  }
}
