/**
 * Prolly tree nodes: the format, key order, chunk boundaries and canonical
 * JSON. The operations on whole trees are in prolly-tree.ts and prolly-diff.ts.
 *
 * Format (version 1). A node is one object in the ObjectStore, stored under
 * the hash of its bytes: UTF-8 JSON in canonical form (RFC 8785 / JCS: no
 * whitespace, object fields sorted by UTF-16 code units, ECMAScript number
 * text), so equal nodes always have equal bytes and equal hashes:
 *
 *   leaf, level 0:     {"k":[key,...],"l":0,"t":"tree","v":[value,...]}
 *   internal, level L: {"c":[count,...],"k":[key,...],"l":L,"t":"tree","v":["sha256:...",...]}
 *
 * `k` holds unique keys in compareKeys order (UTF-8 byte order). In a leaf,
 * `v[i]` is the value of `k[i]`, a JSON object (canonical as well). In an
 * internal node, `v[i]` is the hash of a child node on level L-1, `k[i]` the
 * last (greatest) key under that child and `c[i]` the number of items under
 * it. The empty tree is the empty leaf `{"k":[],"l":0,"t":"tree","v":[]}`.
 *
 * Chunking. Each level is one sorted sequence of entries: the items on level
 * 0, one entry per node of the level below on level L > 0. An entry with key
 * K ends its node when `boundaryHash(L, K) % fanout === 0`, and the last entry
 * of a level always ends a node. The first level with a single node holds the
 * root. `boundaryHash(L, K)` is FNV-1a (32-bit) over the byte L followed by
 * the UTF-8 bytes of K, finished with murmur3's fmix32. Boundaries depend on
 * keys only, so the nodes, and the root hash, are a function of the set of
 * items alone, whatever order or batching of changes produced it. The fanout
 * (expected entries per node) is TREE_FANOUT and part of the format.
 */
import { TongbuError } from '../core/errors.js';
import type { ContentHash } from '../core/hash.js';
import type { ObjectStore } from './object-store.js';

export type TreeValue = { readonly [field: string]: unknown };
export interface TreeItem {
  readonly key: string;
  readonly value: TreeValue;
}
/** A change to apply: `value: null` deletes the key. */
export interface TreeChange {
  readonly key: string;
  readonly value: TreeValue | null;
}
/** One key that differs: `before` absent for an addition, `after` for a deletion. */
export interface TreeDiff {
  readonly key: string;
  readonly before?: TreeValue;
  readonly after?: TreeValue;
}

export const TREE_FANOUT = 32;
/** Levels are hashed as one byte; a tree of 32-way nodes never nears this. */
export const MAX_LEVEL = 255;

export interface TreeOptions {
  /**
   * Expected entries per node. Only for tests, which use a small fanout to
   * get deep trees from few items: a different fanout is a different format.
   */
  readonly fanout?: number;
}

export function resolveFanout(options: TreeOptions): number {
  const fanout = options.fanout ?? TREE_FANOUT;
  if (!Number.isInteger(fanout) || fanout < 2 || fanout > 0xffff) {
    throw new TongbuError('BAD_ARGUMENT', `tree fanout must be an integer in 2..65535`, {
      data: { fanout },
    });
  }
  return fanout;
}

/**
 * Orders keys by their UTF-8 bytes, which for well-formed strings is code
 * point order. JavaScript's `<` compares UTF-16 code units and puts U+1F600
 * (a surrogate pair, 0xD83D...) before U+FFFD; UTF-8 puts it after.
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) {
      // Surrogates (D800-DFFF) encode code points above FFFF: move them past E000-FFFF.
      if (x >= 0xd800 && y >= 0xd800) return codePointRank(x) - codePointRank(y);
      return x - y;
    }
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}

/** Code units from U+D800 up: where UTF-16 order and UTF-8 order can disagree. */
const HIGH_UNITS = /[\ud800-\uffff]/;

/** Sorts by key in compareKeys order, natively when no key needs the surrogate fix. */
export function sortByKey<T extends { readonly key: string }>(list: T[]): void {
  let sorted = true;
  let native = true;
  for (let i = 0; i < list.length && (sorted || native); i++) {
    const key = list[i]!.key;
    if (native && HIGH_UNITS.test(key)) native = false;
    if (sorted && i > 0 && compareKeys(list[i - 1]!.key, key) > 0) sorted = false;
  }
  if (sorted) return;
  if (native) list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  else list.sort((a, b) => compareKeys(a.key, b.key));
}

/** Index of the first key >= `key` in sorted `keys` (keys.length when none). */
export function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(keys[mid]!, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const FNV_PRIME = 0x01000193;

/** fmix32(FNV-1a over [level] ++ UTF-8(key)); see the format above. */
export function boundaryHash(level: number, key: string): number {
  let h = Math.imul(0x811c9dc5 ^ (level & 0xff), FNV_PRIME);
  for (let i = 0; i < key.length; i++) {
    let c = key.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, FNV_PRIME);
      continue;
    }
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < key.length) {
      const low = key.charCodeAt(i + 1);
      if (low >= 0xdc00 && low < 0xe000) {
        c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
        i++;
        h = Math.imul(h ^ (0xf0 | (c >>> 18)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | ((c >>> 12) & 0x3f)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | ((c >>> 6) & 0x3f)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME);
        continue;
      }
    }
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >>> 6)), FNV_PRIME);
    } else {
      h = Math.imul(h ^ (0xe0 | (c >>> 12)), FNV_PRIME);
      h = Math.imul(h ^ (0x80 | ((c >>> 6) & 0x3f)), FNV_PRIME);
    }
    h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function isBoundary(level: number, key: string, fanout: number): boolean {
  return boundaryHash(level, key) % fanout === 0;
}

/** Throws BAD_ARGUMENT unless `key` is a well-formed string (it has UTF-8 bytes). */
export function checkKey(key: unknown): string {
  if (typeof key !== 'string' || !(key as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw new TongbuError('BAD_ARGUMENT', `tree key ${JSON.stringify(key)} is not a valid string`, {
      data: { key: String(key) },
    });
  }
  return key;
}

/** Canonical JSON (RFC 8785 field order) of a value; undefined fields are dropped. */
export function canonicalJson(value: unknown, depth = 0): string {
  if (depth > 64) throw new TypeError('nested more than 64 deep');
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`${value} is not a JSON number`);
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let text = '[';
        for (let i = 0; i < value.length; i++) {
          text += (i > 0 ? ',' : '') + canonicalJson(value[i], depth + 1);
        }
        return `${text}]`;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) throw new TypeError('not a plain object');
      const record = value as Record<string, unknown>;
      // Default sort: UTF-16 code units, as RFC 8785 orders fields.
      const fields = Object.keys(record).sort();
      if (flat(record, fields)) return JSON.stringify(record, fields);
      let text = '{';
      for (const field of fields) {
        const v = record[field];
        if (v === undefined) continue;
        text += `${text.length > 1 ? ',' : ''}${JSON.stringify(field)}:${canonicalJson(v, depth + 1)}`;
      }
      return `${text}}`;
    }
    default:
      throw new TypeError(`a ${typeof value} is not JSON`);
  }
}

/** Whether every field is a string, boolean, finite number, null or undefined. */
function flat(record: Record<string, unknown>, fields: readonly string[]): boolean {
  for (const field of fields) {
    const v = record[field];
    const type = typeof v;
    if (
      type === 'number'
        ? !Number.isFinite(v)
        : type === 'object'
          ? v !== null
          : type !== 'string' && type !== 'boolean' && type !== 'undefined'
    ) {
      return false;
    }
  }
  return true;
}

/** One entry of a level: an item, or a child's last key, hash and item count. */
export interface Entry {
  readonly key: string;
  /** JSON text in `v`: the canonical value, or the quoted child hash. */
  readonly text: string;
  readonly count: number;
}

/** The entry of item `key` → `value`; BAD_ARGUMENT when either is not valid. */
export function itemEntry(key: string, value: unknown): Entry {
  checkKey(key);
  try {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new TypeError('not a plain object');
    }
    return { key, text: canonicalJson(value), count: 1 };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new TongbuError('BAD_ARGUMENT', `value of ${JSON.stringify(key)}: ${why}`, {
      data: { key },
      cause: err,
    });
  }
}

/** The entry that refers to a node holding `entries`. */
export function childEntry(entries: readonly Entry[], hash: ContentHash): Entry {
  let count = 0;
  for (const e of entries) count += e.count;
  return { key: entries[entries.length - 1]!.key, text: `"${hash}"`, count };
}

export function entryHash(entry: Entry): ContentHash {
  return entry.text.slice(1, -1) as ContentHash;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeNode(level: number, entries: readonly Entry[]): Uint8Array {
  const keys = JSON.stringify(entries.map((e) => e.key));
  const values = entries.map((e) => e.text).join(',');
  if (level === 0) return encoder.encode(`{"k":${keys},"l":0,"t":"tree","v":[${values}]}`);
  const counts = entries.map((e) => e.count).join(',');
  return encoder.encode(`{"c":[${counts}],"k":${keys},"l":${level},"t":"tree","v":[${values}]}`);
}

/** A decoded node; leaves fill `values`, internal nodes `children` and `counts`. */
export interface TreeNode {
  readonly level: number;
  readonly keys: readonly string[];
  readonly values: readonly TreeValue[];
  readonly children: readonly ContentHash[];
  readonly counts: readonly number[];
}

export function decodeNode(bytes: Uint8Array, hash: ContentHash): TreeNode {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(bytes));
  } catch (err) {
    throw new TongbuError('INTERNAL', `object ${hash} is not JSON`, { data: { hash }, cause: err });
  }
  const n = json as { t?: unknown; l?: unknown; k?: unknown; v?: unknown; c?: unknown };
  const level = n.l;
  const ok =
    n.t === 'tree' &&
    typeof level === 'number' &&
    Number.isInteger(level) &&
    level >= 0 &&
    level <= MAX_LEVEL &&
    Array.isArray(n.k) &&
    Array.isArray(n.v) &&
    n.k.length === n.v.length &&
    n.k.every((k) => typeof k === 'string') &&
    (level === 0
      ? n.v.every((v) => typeof v === 'object' && v !== null && !Array.isArray(v))
      : n.k.length > 0 &&
        n.v.every((v) => typeof v === 'string') &&
        Array.isArray(n.c) &&
        n.c.length === n.k.length &&
        n.c.every((c) => typeof c === 'number'));
  if (!ok)
    throw new TongbuError('INTERNAL', `object ${hash} is not a tree node`, { data: { hash } });
  const keys = n.k as string[];
  if (level === 0) return { level, keys, values: n.v as TreeValue[], children: [], counts: [] };
  return { level, keys, values: [], children: n.v as ContentHash[], counts: n.c as number[] };
}

/** The entries of a node, as the chunker sees them. */
export function nodeEntries(node: TreeNode): Entry[] {
  if (node.level === 0) {
    return node.keys.map((key, i) => ({ key, text: canonicalJson(node.values[i]), count: 1 }));
  }
  return node.keys.map((key, i) => ({
    key,
    text: `"${node.children[i]!}"`,
    count: node.counts[i]!,
  }));
}

/** Decoded nodes kept per store that asked for it (least recently used out first). */
const nodeCaches = new WeakMap<ObjectStore, { nodes: Map<ContentHash, TreeNode>; size: number }>();

/**
 * Keeps the `size` most recently read nodes of `store` decoded. Nodes are
 * immutable, so a long-lived store (a node's) skips re-reading, re-hashing
 * and re-parsing the upper levels that successive commits walk.
 */
export function keepDecodedNodes(store: ObjectStore, size = 4096): void {
  if (!nodeCaches.has(store)) nodeCaches.set(store, { nodes: new Map(), size });
}

/** A node, verified and decoded (from the store's cache when it keeps one). */
export async function readNode(store: ObjectStore, hash: ContentHash): Promise<TreeNode> {
  const cache = nodeCaches.get(store);
  const cached = cache?.nodes.get(hash);
  if (cached) {
    cache!.nodes.delete(hash);
    cache!.nodes.set(hash, cached);
    return cached;
  }
  const node = decodeNode(await store.get(hash), hash);
  if (cache) {
    cache.nodes.set(hash, node);
    if (cache.nodes.size > cache.size) cache.nodes.delete(cache.nodes.keys().next().value!);
  }
  return node;
}

/** Reads nodes once per operation: a path walked twice costs one read per node. */
export class NodeLoader {
  private readonly store: ObjectStore;
  private readonly cache = new Map<ContentHash, Promise<TreeNode>>();

  constructor(store: ObjectStore) {
    this.store = store;
  }

  get(hash: ContentHash): Promise<TreeNode> {
    let node = this.cache.get(hash);
    if (node === undefined) {
      node = readNode(this.store, hash);
      this.cache.set(hash, node);
    }
    return node;
  }
}

/** Stores `objects` a slice at a time, returning their hashes in order. */
export async function putAll(
  store: ObjectStore,
  objects: readonly Uint8Array[],
): Promise<ContentHash[]> {
  const hashes: ContentHash[] = [];
  for (let i = 0; i < objects.length; i += 64) {
    const slice = objects.slice(i, i + 64);
    hashes.push(...(await Promise.all(slice.map((bytes) => store.put(bytes)))));
  }
  return hashes;
}
