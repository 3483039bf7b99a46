/**
 * The differences between two prolly trees, found by a merge walk over two
 * frontiers (the unread subtrees and unmatched items of each side, in key
 * order). Subtrees with equal hashes hold equal items and are skipped unread;
 * otherwise the side whose head is higher up the tree is expanded (both,
 * read together, when the heads are on the same level), until items meet
 * items. Because chunk boundaries depend on keys only, unchanged stretches of
 * the two trees are made of the same nodes, so the walk reads about two nodes
 * per level per changed stretch.
 */
import type { ContentHash } from '../core/hash.js';
import type { ObjectStore } from './object-store.js';
import {
  canonicalJson,
  compareKeys,
  readNode,
  type TreeDiff,
  type TreeNode,
  type TreeValue,
} from './prolly-node.js';

type Head =
  | { readonly kind: 'node'; readonly hash: ContentHash; readonly level: number }
  | { readonly kind: 'item'; readonly key: string; readonly value: TreeValue };

/** Differences found before a batch is handed out. */
const BATCH = 256;

/** The keys whose values differ from `from` to `to`, in key order, in batches. */
export async function* diffTrees(
  store: ObjectStore,
  from: ContentHash,
  to: ContentHash,
): AsyncGenerator<TreeDiff[]> {
  // Stacks: the head (smallest key) is the last element. Roots' levels are unknown until read.
  const a: Head[] = [{ kind: 'node', hash: from, level: Infinity }];
  const b: Head[] = [{ kind: 'node', hash: to, level: Infinity }];
  let batch: TreeDiff[] = [];
  for (;;) {
    const x = a[a.length - 1];
    const y = b[b.length - 1];
    if (x === undefined && y === undefined) break;
    if (x?.kind === 'node' && y?.kind === 'node') {
      if (x.hash === y.hash) {
        a.pop();
        b.pop();
      } else if (x.level === y.level) {
        await Promise.all([expand(store, a), expand(store, b)]);
      } else {
        await expand(store, x.level > y.level ? a : b);
      }
    } else if (x?.kind === 'node') {
      await expand(store, a);
    } else if (y?.kind === 'node') {
      await expand(store, b);
    } else {
      const order = x === undefined ? 1 : y === undefined ? -1 : compareKeys(x.key, y.key);
      if (order < 0) {
        a.pop();
        batch.push({ key: x!.key, before: x!.value });
      } else if (order > 0) {
        b.pop();
        batch.push({ key: y!.key, after: y!.value });
      } else {
        a.pop();
        b.pop();
        if (canonicalJson(x!.value) !== canonicalJson(y!.value)) {
          batch.push({ key: x!.key, before: x!.value, after: y!.value });
        }
      }
      if (batch.length >= BATCH) {
        yield batch;
        batch = [];
      }
    }
  }
  if (batch.length > 0) yield batch;
}

/** Replaces the node at the head of `side` by its entries. */
async function expand(store: ObjectStore, side: Head[]): Promise<void> {
  const head = side.pop() as Head & { kind: 'node' };
  const node: TreeNode = await readNode(store, head.hash);
  for (let i = node.keys.length - 1; i >= 0; i--) {
    side.push(
      node.level === 0
        ? { kind: 'item', key: node.keys[i]!, value: node.values[i]! }
        : { kind: 'node', hash: node.children[i]!, level: node.level - 1 },
    );
  }
}
