import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTongbuError } from '../core/errors.js';
import type { ContentHash } from '../core/hash.js';
import { MemoryObjectStore, type ObjectStore } from './object-store.js';
import { boundaryHash, readNode } from './prolly-node.js';
import {
  applyChanges,
  buildTree,
  compareKeys,
  diffTrees,
  emptyTree,
  getItem,
  iterateTree,
  TREE_FANOUT,
  treeCount,
  type TreeChange,
  type TreeDiff,
  type TreeItem,
  type TreeValue,
} from './prolly-tree.js';

async function collect<T>(batches: AsyncIterable<T[]>): Promise<T[]> {
  const out: T[] = [];
  for await (const batch of batches) out.push(...batch);
  return out;
}

const byKey = (a: { key: string }, b: { key: string }): number => compareKeys(a.key, b.key);
const same = (a: TreeValue, b: TreeValue): boolean => JSON.stringify(a) === JSON.stringify(b);

function sortedItems(model: Map<string, TreeValue>): TreeItem[] {
  return [...model].map(([key, value]) => ({ key, value })).sort(byKey);
}

function naiveDiff(from: Map<string, TreeValue>, to: Map<string, TreeValue>): TreeDiff[] {
  const keys = [...new Set([...from.keys(), ...to.keys()])].sort(compareKeys);
  return keys.flatMap((key): TreeDiff[] => {
    const before = from.get(key);
    const after = to.get(key);
    if (before && after) return same(before, after) ? [] : [{ key, before, after }];
    return before ? [{ key, before }] : after ? [{ key, after }] : [];
  });
}

/** Depth (levels) and node count, reading every node. */
async function treeShape(store: ObjectStore, root: ContentHash) {
  const top = await readNode(store, root);
  let nodes = 0;
  let level: ContentHash[] = [root];
  while (level.length > 0) {
    nodes += level.length;
    const read = await Promise.all(level.map((h) => readNode(store, h)));
    level = read.flatMap((n) => n.children);
  }
  return { depth: top.level + 1, nodes };
}

function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function shuffle<T>(list: T[], rand: () => number): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  return list;
}

/** Keys built from pieces that are prefixes of each other, NFC/NFD pairs, tabs and emoji. */
const PIECES = [
  'a',
  'ab',
  'b',
  'é',
  'e\u0301',
  'ä',
  'a\u0308',
  '\t',
  ' ',
  '/',
  '😀',
  '\uFFFD',
  '0',
];
const keyArb = fc.oneof(
  fc.array(fc.constantFrom(...PIECES), { maxLength: 5 }).map((p) => p.join('')),
  fc.string({ unit: 'binary', maxLength: 6 }),
);
const valueArb: fc.Arbitrary<TreeValue> = fc.record(
  { n: fc.integer({ min: 0, max: 2 }), s: fc.constantFrom('x', 'é', '😀') },
  { requiredKeys: [] },
);
/** Rows of (key, value before or null, value after or null), and how changes are batched. */
const scenarioArb = fc.record({
  fanout: fc.constantFrom(2, 3, 4, 8, TREE_FANOUT),
  rows: fc.uniqueArray(
    fc.record({ key: keyArb, before: fc.option(valueArb), after: fc.option(valueArb) }),
    { selector: (r) => r.key, maxLength: 200, size: 'medium' },
  ),
  wipe: fc.boolean(),
  seed: fc.integer(),
});
type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

function models({ rows, wipe }: Scenario) {
  const before = new Map<string, TreeValue>();
  const after = new Map<string, TreeValue>();
  for (const r of rows) {
    if (r.before) before.set(r.key, r.before);
    if (r.after && !wipe) after.set(r.key, r.after);
  }
  return { before, after };
}

describe('compareKeys', () => {
  it('orders by UTF-8 bytes, not UTF-16 code units', () => {
    expect('\u{1F600}' < '\uFFFD').toBe(true);
    expect(compareKeys('\u{1F600}', '\uFFFD')).toBeGreaterThan(0);
    expect(compareKeys('a', 'ab')).toBeLessThan(0);
    expect(compareKeys('é', 'e\u0301')).toBeGreaterThan(0);
  });

  it('agrees with Buffer.compare, including prefixes', () => {
    const str = fc.string({ unit: 'binary', maxLength: 8 });
    const pair = fc.oneof(
      fc.tuple(str, str),
      fc.tuple(str, str).map(([a, b]) => [a, a + b] as [string, string]),
    );
    fc.assert(
      fc.property(pair, ([a, b]) => {
        const bytes = Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b)));
        expect(Math.sign(compareKeys(a, b))).toBe(bytes);
        expect(Math.sign(compareKeys(b, a))).toBe(-bytes || 0);
      }),
    );
  });
});

describe('prolly tree format', () => {
  it('hashes the UTF-8 bytes of the key, salted by the level', () => {
    const reference = (level: number, key: string): number => {
      let h = Math.imul(0x811c9dc5 ^ level, 0x01000193);
      for (const byte of Buffer.from(key)) h = Math.imul(h ^ byte, 0x01000193);
      h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
      h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
      return (h ^ (h >>> 16)) >>> 0;
    };
    fc.assert(
      fc.property(fc.nat(20), fc.string({ unit: 'binary' }), (level, key) => {
        expect(boundaryHash(level, key)).toBe(reference(level, key));
      }),
    );
    expect([boundaryHash(0, ''), boundaryHash(1, ''), boundaryHash(0, 'a/😀')]).toEqual([
      0x0578ab1b, 0x05644487, 0x54678a7d,
    ]);
  });

  it('stores canonical JSON nodes', async () => {
    const store = new MemoryObjectStore();
    const empty = await emptyTree(store);
    expect(new TextDecoder().decode(await store.get(empty))).toBe(
      '{"k":[],"l":0,"t":"tree","v":[]}',
    );
    const root = await buildTree(store, [
      { key: 'b', value: { y: 1, x: [2, { d: 1, c: 2 }], u: undefined, '10': 1, '9': 0 } },
      { key: 'a', value: {} },
      { key: 'c', value: { z: null, '10': 'é', '9': false, u: undefined } },
    ]);
    expect(new TextDecoder().decode(await store.get(root))).toBe(
      '{"k":["a","b","c"],"l":0,"t":"tree","v":[{},' +
        '{"10":1,"9":0,"x":[2,{"c":2,"d":1}],"y":1},{"10":"é","9":false,"z":null}]}',
    );
    expect(await treeCount(store, root)).toBe(3);
  });

  it('keeps the chunking of a known tree (fanout 32)', async () => {
    const store = new MemoryObjectStore();
    const items = Array.from({ length: 2000 }, (_, i) => ({ key: `k${i}`, value: { i } }));
    const root = await buildTree(store, items);
    expect(await treeShape(store, root)).toEqual({ depth: 3, nodes: 71 });
    expect(root).toBe('blake3:f28626f57f199a9084975cbca39a076e34002d72fc3bdeb18a1bc8de5eca4090');
  });

  it('refuses repeated keys, non-JSON values and malformed keys', async () => {
    const store = new MemoryObjectStore();
    const root = await emptyTree(store);
    const bad: (() => Promise<unknown>)[] = [
      () =>
        buildTree(store, [
          { key: 'a', value: {} },
          { key: 'a', value: { x: 1 } },
        ]),
      () =>
        applyChanges(store, root, [
          { key: 'a', value: null },
          { key: 'a', value: {} },
        ]),
      () => buildTree(store, [{ key: 'a', value: { n: NaN } }]),
      () => buildTree(store, [{ key: 'a', value: { n: 1n } }]),
      () => buildTree(store, [{ key: 'a', value: { d: new Date(0) } }]),
      () => buildTree(store, [{ key: 'a', value: [] as unknown as TreeValue }]),
      () => buildTree(store, [{ key: '\ud800', value: {} }]),
      () => buildTree(store, [], { fanout: 1 }),
    ];
    for (const call of bad) {
      const err = await call().catch((e: unknown) => e);
      expect(isTongbuError(err, 'BAD_ARGUMENT')).toBe(true);
    }
  });
});

describe('history independence', () => {
  it('buildTree(S) equals applyChanges from S0 in any order and batching', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scenario) => {
        const { fanout, rows, seed } = scenario;
        const { before, after } = models(scenario);
        const store = new MemoryObjectStore();
        // Every row becomes a change: upserts of unchanged values and deletes of absent keys are no-ops.
        const changes: TreeChange[] = rows.map((r) => ({
          key: r.key,
          value: after.get(r.key) ?? null,
        }));
        const rand = random(seed);
        shuffle(changes, rand);
        let root = await buildTree(store, sortedItems(before).reverse(), { fanout });
        while (changes.length > 0) {
          const batch = changes.splice(0, 1 + Math.floor(rand() * changes.length));
          root = await applyChanges(store, root, batch, { fanout });
        }
        expect(root).toBe(await buildTree(store, sortedItems(after), { fanout }));
        if (after.size === 0) expect(root).toBe(await emptyTree(store));
        expect(await treeCount(store, root)).toBe(after.size);
        expect(await collect(iterateTree(store, root))).toEqual(sortedItems(after));
      }),
      { numRuns: 200 },
    );
  });

  it('holds through many rounds on deep trees, down to empty', async () => {
    const rand = random(42);
    for (const fanout of [2, 4, 32]) {
      const store = new MemoryObjectStore();
      const model = new Map<string, TreeValue>();
      let root = await emptyTree(store);
      for (let round = 0; round < 25; round++) {
        const changes = new Map<string, TreeValue | null>();
        const size = round === 24 ? 0 : Math.floor(rand() * 400);
        for (let i = 0; i < size; i++) {
          const key = `d${Math.floor(rand() * 3000)}`;
          changes.set(key, rand() < 0.3 ? null : { v: Math.floor(rand() * 3) });
        }
        if (round === 24) for (const key of model.keys()) changes.set(key, null);
        for (const [key, value] of changes) {
          if (value) model.set(key, value);
          else model.delete(key);
        }
        const list = [...changes].map(([key, value]) => ({ key, value }));
        root = await applyChanges(store, root, list, { fanout });
        expect(root).toBe(await buildTree(store, sortedItems(model), { fanout }));
      }
      expect(root).toBe(await emptyTree(store));
    }
  });

  it('encodes the same logical value the same way', async () => {
    const store = new MemoryObjectStore();
    const a = await buildTree(store, [{ key: 'k', value: { x: 1, y: { p: [1, 2], q: 'é' } } }]);
    const b = await buildTree(store, [{ key: 'k', value: { y: { q: 'é', p: [1, 2] }, x: 1 } }]);
    expect(a).toBe(b);
  });
});

describe('diffTrees', () => {
  it('equals a naive diff of the two item lists', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scenario) => {
        const { fanout } = scenario;
        const { before, after } = models(scenario);
        const store = new MemoryObjectStore();
        const from = await buildTree(store, sortedItems(before), { fanout });
        const to = await buildTree(store, sortedItems(after), { fanout });
        expect(await collect(diffTrees(store, from, to))).toEqual(naiveDiff(before, after));
        expect(await collect(diffTrees(store, to, from))).toEqual(naiveDiff(after, before));
      }),
      { numRuns: 200 },
    );
  });

  it('reads nothing for equal roots', async () => {
    const store = new MemoryObjectStore();
    const root = await buildTree(store, [{ key: 'a', value: {} }]);
    store.reads = 0;
    expect(await collect(diffTrees(store, root, root))).toEqual([]);
    expect(store.reads).toBe(0);
  });
});

describe('iterateTree, getItem, treeCount', () => {
  it('lists items in key order, filtered by prefix and after', async () => {
    const rangeArb = fc.record({ prefix: fc.option(keyArb), after: fc.option(keyArb) });
    await fc.assert(
      fc.asyncProperty(scenarioArb, rangeArb, keyArb, async (scenario, range, probe) => {
        const { before } = models(scenario);
        const store = new MemoryObjectStore();
        const root = await buildTree(store, sortedItems(before), { fanout: scenario.fanout });
        const options = {
          ...(range.prefix === null ? {} : { prefix: range.prefix }),
          ...(range.after === null ? {} : { after: range.after }),
        };
        const expected = sortedItems(before).filter(
          (item) =>
            (range.prefix === null || item.key.startsWith(range.prefix)) &&
            (range.after === null || compareKeys(item.key, range.after) > 0),
        );
        expect(await collect(iterateTree(store, root, options))).toEqual(expected);
        expect(await getItem(store, root, probe)).toEqual(before.get(probe));
        for (const [key, value] of before) expect(await getItem(store, root, key)).toEqual(value);
        expect(await treeCount(store, root)).toBe(before.size);
      }),
      { numRuns: 100 },
    );
  });
});

const shardKey = (shard: number, part: number): string =>
  `shard-${String(shard).padStart(4, '0')}/part-${String(part).padStart(5, '0')}.bin`;

function fileValue(i: number, version = 0): TreeValue {
  const word = (Math.imul(i + 1, 0x9e3779b1) ^ version).toString(16).padStart(8, '0');
  return {
    kind: 'file',
    size: (i * 7919) % 1_000_000_000,
    mtimeMs: 1_700_000_000_000 + i * 1000 + version,
    mode: 0o644,
    hash: `sha256:${word.repeat(8)}`,
  };
}

describe('200,000 entries', () => {
  it('builds fast; a 10-entry change and its diff cost O(10 x depth) reads', async () => {
    const store = new MemoryObjectStore();
    const items: TreeItem[] = [];
    for (let i = 0; i < 200_000; i++) {
      items.push({ key: shardKey(Math.floor(i / 500), i % 500), value: fileValue(i) });
    }
    shuffle(items, random(7));
    const started = performance.now();
    const v1 = await buildTree(store, items);
    const buildMs = performance.now() - started;
    expect(buildMs).toBeLessThan(3000);

    const changes: TreeChange[] = [
      1, 9_999, 31_337, 77_777, 100_001, 123_456, 150_000, 199_999,
    ].map((i) => ({ key: shardKey(Math.floor(i / 500), i % 500), value: fileValue(i, 1) }));
    changes.push({ key: shardKey(123, 500), value: fileValue(200_000) });
    changes.push({ key: shardKey(310, 7), value: null });
    store.reads = 0;
    store.writes = 0;
    const v2 = await applyChanges(store, v1, changes);
    const apply = { reads: store.reads, writes: store.writes };

    store.reads = 0;
    const diffs = await collect(diffTrees(store, v1, v2));
    const diffReads = store.reads;
    const before = new Map(items.map((item) => [item.key, item.value]));
    expect(diffs).toEqual(
      changes
        .map((c) => ({
          key: c.key,
          ...(before.has(c.key) ? { before: before.get(c.key) } : {}),
          ...(c.value ? { after: c.value } : {}),
        }))
        .sort(byKey),
    );

    store.reads = 0;
    const prefixed = await collect(iterateTree(store, v2, { prefix: 'shard-0123/' }));
    const prefixReads = store.reads;
    expect(prefixed.map((item) => item.key)).toEqual(
      Array.from({ length: 501 }, (_, part) => shardKey(123, part)),
    );
    store.reads = 0;
    expect(await getItem(store, v2, shardKey(310, 7))).toBeUndefined();
    const getReads = store.reads;

    const shape = await treeShape(store, v2);
    console.log(
      `prolly tree, 200,000 entries: build ${buildMs.toFixed(0)} ms, depth ${shape.depth}, ` +
        `${shape.nodes} nodes; 10 changes: apply ${apply.reads} reads / ${apply.writes} writes, ` +
        `diff ${diffReads} reads; prefix listing of 501: ${prefixReads} reads; get: ${getReads} reads`,
    );
    expect(diffReads).toBeLessThanOrEqual(10 * shape.depth * 2 + 2);
    expect(apply.reads).toBeLessThanOrEqual(10 * shape.depth * 2);
    expect(apply.writes).toBeLessThanOrEqual(10 * shape.depth * 2);
    expect(getReads).toBe(shape.depth);
    expect(prefixReads).toBeLessThanOrEqual(shape.depth + 2 * Math.ceil(501 / TREE_FANOUT) + 4);
    expect(await treeCount(store, v2)).toBe(200_000);
    const after = new Map(before);
    for (const c of changes) {
      if (c.value) after.set(c.key, c.value);
      else after.delete(c.key);
    }
    const rebuilt = [...after].map(([key, value]) => ({ key, value }));
    expect(v2).toBe(await buildTree(new MemoryObjectStore(), rebuilt));
  });
});
