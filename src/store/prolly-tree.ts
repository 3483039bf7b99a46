/**
 * A prolly tree: a namespace's entries (a sorted map key → JSON object) as
 * immutable, content-defined nodes in an ObjectStore. The node format and
 * chunking rule are described in prolly-node.ts; what matters here is that
 * the root hash depends only on the set of items (history independence), so
 * two trees with equal roots are equal and equal subtrees can be skipped.
 *
 * Costs: getItem reads one node per level; applyChanges reads and rewrites
 * the nodes on the paths to the changed keys, plus the neighbours re-chunked
 * where a boundary appears or disappears; iterateTree reads only subtrees that
 * can hold keys in range; diffTrees (prolly-diff.ts) skips equal subtrees.
 */
import { TongbuError } from '../core/errors.js';
import { storeAddress, type ContentHash } from '../core/hash.js';
import {
  checkKey,
  childEntry,
  compareKeys,
  encodeNode,
  entryHash,
  isBoundary,
  itemEntry,
  lowerBound,
  MAX_LEVEL,
  NodeLoader,
  nodeEntries,
  putAll,
  readNode,
  resolveFanout,
  sortByKey,
  type Entry,
  type TreeChange,
  type TreeItem,
  type TreeNode,
  type TreeOptions,
  type TreeValue,
} from './prolly-node.js';
import type { ObjectStore } from './object-store.js';

export { diffTrees } from './prolly-diff.js';
export {
  compareKeys,
  TREE_FANOUT,
  type TreeChange,
  type TreeDiff,
  type TreeItem,
  type TreeOptions,
  type TreeValue,
} from './prolly-node.js';

export async function emptyTree(store: ObjectStore): Promise<ContentHash> {
  return store.put(encodeNode(0, []));
}

/**
 * Builds the tree of `items`, given in any order; a repeated key is
 * BAD_ARGUMENT. Values are canonicalized as their leaves are written, so a bad
 * value can fail the build after some leaves are stored (nothing refers to them).
 */
export async function buildTree(
  store: ObjectStore,
  items: Iterable<TreeItem>,
  options: TreeOptions = {},
): Promise<ContentHash> {
  const fanout = resolveFanout(options);
  const sorted = [...items];
  for (const item of sorted) checkKey(item.key);
  sortUnique(sorted);
  if (sorted.length === 0) return emptyTree(store);
  return buildLevels(store, leafEntries(sorted), 0, fanout);
}

function* leafEntries(items: readonly TreeItem[]): Generator<Entry> {
  for (const item of items) yield itemEntry(item.key, item.value);
}

function sortUnique<T extends { readonly key: string }>(list: T[]): void {
  sortByKey(list);
  for (let i = 1; i < list.length; i++) {
    const key = list[i]!.key;
    if (key === list[i - 1]!.key) {
      throw new TongbuError('BAD_ARGUMENT', `key ${JSON.stringify(key)} given twice`, {
        data: { key },
      });
    }
  }
}

/** Chunks and stores a whole level, and the levels above it, up to a single root. */
async function buildLevels(
  store: ObjectStore,
  entries: Iterable<Entry>,
  level: number,
  fanout: number,
): Promise<ContentHash> {
  for (;;) {
    const parents = await writeLevel(store, entries, level, fanout);
    if (parents.length === 1) return entryHash(parents[0]!);
    entries = parents;
    if (++level > MAX_LEVEL) throw new TongbuError('INTERNAL', 'prolly tree too deep');
  }
}

/** Stores the nodes of one level a batch at a time; returns their entries for the level above. */
async function writeLevel(
  store: ObjectStore,
  entries: Iterable<Entry>,
  level: number,
  fanout: number,
): Promise<Entry[]> {
  const parents: Entry[] = [];
  let batch: Entry[][] = [];
  const flush = async (): Promise<void> => {
    const hashes = await putAll(
      store,
      batch.map((chunk) => encodeNode(level, chunk)),
    );
    batch.forEach((chunk, i) => parents.push(childEntry(chunk, hashes[i]!)));
    batch = [];
  };
  let chunk: Entry[] = [];
  for (const entry of entries) {
    chunk.push(entry);
    if (!isBoundary(level, entry.key, fanout)) continue;
    batch.push(chunk);
    chunk = [];
    if (batch.length >= 64) await flush();
  }
  if (chunk.length > 0) batch.push(chunk);
  await flush();
  return parents;
}

/** A change to one level: the entry to store under `key`, or null to drop it. */
interface Edit {
  readonly key: string;
  readonly entry: Entry | null;
}

/** A node written by applyChanges, held back until the new root is known. */
interface FreshNode {
  readonly level: number;
  readonly entries: readonly Entry[];
  readonly bytes: Uint8Array;
}

/**
 * Applies `changes` (any order; one per key; deleting an absent key does
 * nothing) level by level from the leaves up: each level's rewritten nodes
 * become the edits of the level above.
 */
export async function applyChanges(
  store: ObjectStore,
  root: ContentHash,
  changes: readonly TreeChange[],
  options: TreeOptions = {},
): Promise<ContentHash> {
  const fanout = resolveFanout(options);
  let edits: Edit[] = changes.map((c) => ({
    key: checkKey(c.key),
    entry: c.value === null ? null : itemEntry(c.key, c.value),
  }));
  sortUnique(edits);
  if (edits.length === 0) return root;
  const loader = new NodeLoader(store);
  const top = (await loader.get(root)).level;
  const fresh = new Map<ContentHash, FreshNode>();
  for (let level = 0; ; level++) {
    const cursor = new LevelCursor(loader, root, top, level);
    const { consumed, emitted } = await rewriteLevel(cursor, edits, fanout, fresh);
    if (level === top) return finishTop(store, loader, fresh, emitted, top, fanout);
    edits = parentEdits(consumed, emitted);
    if (edits.length === 0) return root;
  }
}

/**
 * Rewrites the nodes of one level that `edits` touch. A run of nodes starts
 * at the node holding the next edit (its start is a boundary either way) and
 * goes on until the re-chunked entries end exactly where an old node ended.
 * Returns the old nodes replaced (last key → hash) and the new ones in order.
 */
async function rewriteLevel(
  cursor: LevelCursor,
  edits: readonly Edit[],
  fanout: number,
  fresh: Map<ContentHash, FreshNode>,
): Promise<{ consumed: Map<string, ContentHash>; emitted: Entry[] }> {
  const level = cursor.level;
  const consumed = new Map<string, ContentHash>();
  const old = new Set<ContentHash>();
  const emitted: Entry[] = [];
  let pending: Entry[] = [];
  const emit = (): void => {
    const bytes = encodeNode(level, pending);
    const hash = storeAddress(bytes);
    if (!old.has(hash)) fresh.set(hash, { level, entries: pending, bytes });
    emitted.push(childEntry(pending, hash));
    pending = [];
  };
  const take = (entry: Entry): void => {
    pending.push(entry);
    if (isBoundary(level, entry.key, fanout)) emit();
  };
  let e = 0;
  while (e < edits.length) {
    await cursor.seek(edits[e]!.key);
    for (;;) {
      const hash = cursor.hash();
      const entries = nodeEntries(await cursor.node());
      const last = !cursor.hasNext();
      const limit = last ? undefined : entries[entries.length - 1]!.key;
      if (entries.length > 0) consumed.set(entries[entries.length - 1]!.key, hash);
      old.add(hash);
      let i = 0;
      for (;;) {
        const edit = edits[e];
        const inRun =
          edit !== undefined && (limit === undefined || compareKeys(edit.key, limit) <= 0);
        const entry = entries[i];
        if (!inRun && entry === undefined) break;
        const order = !inRun ? -1 : entry === undefined ? 1 : compareKeys(entry.key, edit.key);
        if (order < 0) {
          take(entry!);
          i++;
          continue;
        }
        if (order === 0) i++;
        e++;
        if (edit!.entry !== null) take(edit!.entry);
      }
      // The last entry of a level always ends a node.
      if (last && pending.length > 0) emit();
      if (last || pending.length === 0) break;
      await cursor.next();
    }
  }
  return { consumed, emitted };
}

/** Edits for the level above: drop replaced nodes, add new ones, skip the unchanged. */
function parentEdits(consumed: Map<string, ContentHash>, emitted: readonly Entry[]): Edit[] {
  const edits = new Map<string, Entry | null>();
  for (const key of consumed.keys()) edits.set(key, null);
  for (const entry of emitted) {
    if (consumed.get(entry.key) === entryHash(entry)) edits.delete(entry.key);
    else edits.set(entry.key, entry);
  }
  return [...edits]
    .map(([key, entry]) => ({ key, entry }))
    .sort((a, b) => compareKeys(a.key, b.key));
}

/**
 * Turns the rewritten top level into the new root: grows the tree when it
 * has several nodes, and drops single-child nodes when it has shrunk. Only
 * nodes under the new root are written.
 */
async function finishTop(
  store: ObjectStore,
  loader: NodeLoader,
  fresh: Map<ContentHash, FreshNode>,
  emitted: Entry[],
  top: number,
  fanout: number,
): Promise<ContentHash> {
  if (emitted.length === 0) return emptyTree(store);
  let root = entryHash(emitted[0]!);
  let level = top;
  if (emitted.length === 1) {
    while (level > 0) {
      const node = fresh.get(root);
      const only = node
        ? onlyChild(node.entries.map(entryHash))
        : onlyChild((await loader.get(root)).children);
      if (only === undefined) break;
      root = only;
      level--;
    }
  }
  await putAll(
    store,
    [...fresh.values()].filter((n) => n.level <= level).map((n) => n.bytes),
  );
  return emitted.length === 1 ? root : buildLevels(store, emitted, top + 1, fanout);
}

function onlyChild(children: readonly ContentHash[]): ContentHash | undefined {
  return children.length === 1 ? children[0] : undefined;
}

/** A position on one level of an existing tree: the path of (node, index) from the root. */
class LevelCursor {
  readonly level: number;
  private readonly loader: NodeLoader;
  private readonly root: ContentHash;
  private readonly top: number;
  private frames: { node: TreeNode; index: number }[] = [];

  constructor(loader: NodeLoader, root: ContentHash, top: number, level: number) {
    this.loader = loader;
    this.root = root;
    this.top = top;
    this.level = level;
  }

  /** Moves to the node of this level that holds `key`, or to the last node. */
  async seek(key: string): Promise<void> {
    this.frames = [];
    let hash = this.root;
    for (let l = this.top; l > this.level; l--) {
      const node = await this.loader.get(hash);
      const index = Math.min(lowerBound(node.keys, key), node.keys.length - 1);
      this.frames.push({ node, index });
      hash = node.children[index]!;
    }
  }

  hash(): ContentHash {
    const frame = this.frames[this.frames.length - 1];
    return frame ? frame.node.children[frame.index]! : this.root;
  }

  node(): Promise<TreeNode> {
    return this.loader.get(this.hash());
  }

  hasNext(): boolean {
    return this.frames.some((f) => f.index < f.node.keys.length - 1);
  }

  async next(): Promise<void> {
    let d = this.frames.length - 1;
    while (d >= 0 && this.frames[d]!.index >= this.frames[d]!.node.keys.length - 1) d--;
    if (d < 0) throw new TongbuError('INTERNAL', 'prolly tree cursor moved past the end');
    this.frames[d]!.index++;
    for (let i = d + 1; i < this.frames.length; i++) {
      const up = this.frames[i - 1]!;
      this.frames[i] = { node: await this.loader.get(up.node.children[up.index]!), index: 0 };
    }
  }
}

/** The value of `key`, reading one node per level. */
export async function getItem(
  store: ObjectStore,
  root: ContentHash,
  key: string,
): Promise<TreeValue | undefined> {
  let node = await readNode(store, root);
  for (;;) {
    const i = lowerBound(node.keys, key);
    if (i === node.keys.length) return undefined;
    if (node.level === 0) return node.keys[i] === key ? node.values[i] : undefined;
    node = await readNode(store, node.children[i]!);
  }
}

/** The number of items, from the root node alone. */
export async function treeCount(store: ObjectStore, root: ContentHash): Promise<number> {
  const node = await readNode(store, root);
  return node.level === 0 ? node.keys.length : node.counts.reduce((a, b) => a + b, 0);
}

export interface IterateOptions {
  /** Only keys starting with this prefix. */
  readonly prefix?: string;
  /** Only keys after (greater than) this one, to resume a listing. */
  readonly after?: string;
}

/** The items in key order, one batch per leaf; subtrees out of range are not read. */
export async function* iterateTree(
  store: ObjectStore,
  root: ContentHash,
  options: IterateOptions = {},
): AsyncGenerator<TreeItem[]> {
  yield* walk(store, await readNode(store, root), options);
}

async function* walk(
  store: ObjectStore,
  node: TreeNode,
  range: IterateOptions,
): AsyncGenerator<TreeItem[]> {
  const picked = inRange(node.keys, range);
  if (node.level === 0) {
    const items = picked
      .filter((i) => range.prefix === undefined || node.keys[i]!.startsWith(range.prefix))
      .map((i) => ({ key: node.keys[i]!, value: node.values[i]! }));
    if (items.length > 0) yield items;
    return;
  }
  const children = picked.map((i) => node.children[i]!);
  if (node.level > 1) {
    for (const child of children) yield* walk(store, await readNode(store, child), range);
    return;
  }
  const leaves = await Promise.all(children.map((child) => readNode(store, child)));
  for (const leaf of leaves) yield* walk(store, leaf, range);
}

/**
 * Indexes of the keys (items, or children's last keys) that can hold keys in
 * range: from the first at or past the start to the first past the prefix.
 */
function inRange(keys: readonly string[], { prefix, after }: IterateOptions): number[] {
  let start = 0;
  if (after !== undefined) {
    start = lowerBound(keys, after);
    if (keys[start] === after) start++;
  }
  if (prefix !== undefined) start = Math.max(start, lowerBound(keys, prefix));
  const picked: number[] = [];
  for (let i = start; i < keys.length; i++) {
    picked.push(i);
    if (prefix !== undefined && !keys[i]!.startsWith(prefix)) break;
  }
  return picked;
}
