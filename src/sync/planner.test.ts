/**
 * The planner on in-memory listings: how each entry is classified, filter
 * semantics, the order of deletes and mkdirs, `copy` next to a directory in
 * the way, the saved state, and (property-tested) that a plan applied to
 * the destination yields the source, runs in a valid order, is idempotent
 * and does not depend on the order of the listings.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parentKey, type Key } from '../core/key.js';
import type { Entry } from '../endpoints/endpoint.js';
import { createFilter } from './filter.js';
import { planSync, type Plan, type PlanOptions, type StateLookup } from './planner.js';
import type { StateRow } from './sync-state.js';

const T = 1_700_000_000_000;

const file = (key: Key, size = 10, mtimeMs = T, mode = 0o644): Entry => ({
  key,
  kind: 'file',
  size,
  mtimeMs,
  mode,
});
const dir = (key: Key, mode = 0o755, mtimeMs = T): Entry => ({
  key,
  kind: 'dir',
  size: 0,
  mtimeMs,
  mode,
});
const link = (key: Key, target: string, mtimeMs = T): Entry => ({
  key,
  kind: 'symlink',
  size: 0,
  mtimeMs,
  mode: 0,
  target,
});
const listing = (...entries: Entry[]): Map<Key, Entry> => new Map(entries.map((e) => [e.key, e]));

const noState: StateLookup = () => undefined;

function opts(over: Partial<PlanOptions> = {}): PlanOptions {
  return {
    mode: 'incremental',
    checksum: false,
    deleteExtraneous: true,
    filter: () => true,
    filtered: false,
    pruneEmptyDirs: false,
    mtimeToleranceMs: 0.001,
    ...over,
  };
}

/** Options as the engine derives them from --include / --exclude. */
function filtered(include: string[], exclude: string[], over: Partial<PlanOptions> = {}) {
  return opts({
    filter: createFilter(include, exclude),
    filtered: include.length + exclude.length > 0,
    pruneEmptyDirs: include.length > 0,
    ...over,
  });
}

const keys = (entries: readonly { key: Key }[]): Key[] => entries.map((e) => e.key);
const sorted = (list: readonly string[]): string[] => [...list].sort();

/** A plan with every list as a sorted set: for comparisons that ignore order. */
function asSets(plan: Plan) {
  return {
    replaces: sorted(keys(plan.replaces)),
    mkdirs: sorted(keys(plan.mkdirs)),
    copies: sorted(plan.copies.map((c) => `${c.source.key} compare=${c.compare}`)),
    links: sorted(keys(plan.links)),
    metas: sorted(plan.metas.map((m) => m.entry.key)),
    deletes: sorted(keys(plan.deletes)),
    dirs: sorted(plan.dirs.map((d) => `${d.entry.key} dest=${d.dest !== undefined}`)),
    blocked: sorted(keys(plan.blocked)),
    unchanged: plan.unchanged,
    destinationCount: plan.destinationCount,
  };
}

/** Keys a plan acts on, by action, in plan order. */
function actions(plan: Plan) {
  return {
    replaces: keys(plan.replaces),
    mkdirs: keys(plan.mkdirs),
    copies: plan.copies.map((c) => c.source.key),
    links: keys(plan.links),
    metas: plan.metas.map((m) => m.entry.key),
    deletes: keys(plan.deletes),
    blocked: keys(plan.blocked),
  };
}

const isBelow = (key: Key, dirKey: Key): boolean => key.startsWith(`${dirKey}/`);

describe('planSync: classification', () => {
  it('plans everything for an empty destination: mkdirs, plain copies, links', () => {
    const source = listing(dir('d'), file('d/f'), link('d/l', '../x'), file('top', 0), dir('e'));
    const plan = planSync(source, new Map(), noState, opts());
    expect(actions(plan)).toEqual({
      replaces: [],
      mkdirs: ['d', 'e'],
      copies: ['d/f', 'top'],
      links: ['d/l'],
      metas: [],
      deletes: [],
      blocked: [],
    });
    expect(plan.copies.every((c) => !c.compare)).toBe(true);
    expect(plan.unchanged).toBe(0);
    expect(sorted(plan.dirs.map((d) => d.entry.key))).toEqual(['d', 'e']);
    expect(plan.destinationCount).toBe(0);
  });

  it('tells new, changed, metadata-only, unchanged and deleted entries apart', () => {
    const source = listing(
      file('same'),
      file('new'),
      file('resized', 11),
      file('touched', 10, T + 5000),
      file('chmodded', 10, T, 0o600),
      file('close', 10, T + 0.0005),
      link('link-same', 'a'),
      link('link-retargeted', 'b'),
      link('link-touched', 'a', T + 1),
      dir('dir-same'),
      dir('dir-chmodded', 0o700),
      dir('dir-touched', 0o755, T + 9),
    );
    const dest = listing(
      file('same'),
      file('resized'),
      file('touched'),
      file('chmodded'),
      file('close'),
      link('link-same', 'a'),
      link('link-retargeted', 'a'),
      link('link-touched', 'a'),
      dir('dir-same'),
      dir('dir-chmodded'),
      dir('dir-touched'),
      file('gone'),
      dir('gone-dir'),
      file('gone-dir/inner'),
    );
    const plan = planSync(source, dest, noState, opts());
    expect(asSets(plan)).toEqual({
      replaces: [],
      mkdirs: [],
      copies: ['new compare=false', 'resized compare=false', 'touched compare=true'],
      links: ['link-retargeted'],
      metas: ['chmodded', 'dir-chmodded', 'link-touched'],
      deletes: ['gone', 'gone-dir', 'gone-dir/inner'],
      dirs: ['dir-chmodded dest=true', 'dir-same dest=true', 'dir-touched dest=true'],
      blocked: [],
      // same, close (within tolerance), link-same, dir-same, dir-touched (its time is set with dirs)
      unchanged: 5,
      destinationCount: dest.size,
    });
  });

  it('honours the mtime tolerance of the coarser side', () => {
    const source = listing(file('a', 10, T + 999), file('b', 10, T + 1001));
    const dest = listing(file('a', 10, T), file('b', 10, T));
    const plan = planSync(source, dest, noState, opts({ mtimeToleranceMs: 1000 }));
    expect(plan.unchanged).toBe(1);
    expect(plan.copies).toEqual([{ source: source.get('b'), compare: true }]);
  });

  it('copy (no deleteExtraneous) deletes nothing', () => {
    const source = listing(file('a'));
    const dest = listing(file('a'), file('extra'), dir('extra-dir'), file('extra-dir/x'));
    const plan = planSync(source, dest, noState, opts({ deleteExtraneous: false }));
    expect(plan.deletes).toEqual([]);
    expect(plan.unchanged).toBe(1);
    expect(plan.destinationCount).toBe(4);
  });
});

describe('planSync: kind changes', () => {
  it('replaces a file by a directory', () => {
    const source = listing(dir('x'), file('x/inner'));
    const dest = listing(file('x'));
    const plan = planSync(source, dest, noState, opts());
    expect(actions(plan)).toMatchObject({
      replaces: ['x'],
      mkdirs: ['x'],
      copies: ['x/inner'],
      deletes: [],
    });
    expect(plan.replaces[0]!.kind).toBe('file');
  });

  it('replaces a directory by a file, deleting what it held deepest first', () => {
    const source = listing(file('x'));
    const dest = listing(dir('x'), dir('x/sub'), file('x/sub/deep'), file('x/top'));
    const plan = planSync(source, dest, noState, opts());
    expect(keys(plan.replaces)).toEqual(['x']);
    expect(plan.replaces[0]!.kind).toBe('dir');
    expect(keys(plan.copies.map((c) => c.source))).toEqual(['x']);
    expect(sorted(keys(plan.deletes))).toEqual(['x/sub', 'x/sub/deep', 'x/top']);
    expect(keys(plan.deletes).indexOf('x/sub/deep')).toBeLessThan(
      keys(plan.deletes).indexOf('x/sub'),
    );
  });

  it('replaces links by files and directories, and the reverse', () => {
    const source = listing(
      file('was-link'),
      dir('was-link-dir'),
      link('was-file', 't'),
      link('was-dir', 't'),
    );
    const dest = listing(
      link('was-link', 't'),
      link('was-link-dir', 't'),
      file('was-file'),
      dir('was-dir'),
    );
    const plan = planSync(source, dest, noState, opts());
    expect(asSets(plan)).toMatchObject({
      replaces: ['was-dir', 'was-file', 'was-link', 'was-link-dir'],
      mkdirs: ['was-link-dir'],
      copies: ['was-link compare=false'],
      links: ['was-dir', 'was-file'],
      deletes: [],
    });
  });

  it('copy reports a source file whose destination is a directory as blocked, and leaves it alone', () => {
    const source = listing(file('x'), link('y', 't'), file('ok'));
    const dest = listing(dir('x'), file('x/keep'), dir('y'), dir('y/sub'));
    const plan = planSync(source, dest, noState, opts({ deleteExtraneous: false }));
    expect(sorted(keys(plan.blocked))).toEqual(['x', 'y']);
    expect(plan.replaces).toEqual([]);
    expect(plan.deletes).toEqual([]);
    expect(actions(plan)).toMatchObject({ copies: ['ok'], links: [] });
  });

  it('copy still replaces a file that is in the way of a directory', () => {
    const source = listing(dir('x'), file('x/a'));
    const dest = listing(file('x'));
    const plan = planSync(source, dest, noState, opts({ deleteExtraneous: false }));
    expect(actions(plan)).toMatchObject({
      replaces: ['x'],
      mkdirs: ['x'],
      copies: ['x/a'],
      blocked: [],
    });
  });
});

describe('planSync: filters', () => {
  const source = listing(
    dir('build'),
    file('build/out.o'),
    dir('build/sub'),
    file('build/sub/deep.o'),
    dir('src'),
    file('src/main.txt'),
    file('src/main.tmp'),
    dir('src/build'),
    file('src/build/x'),
    dir('docs'),
    file('docs/a.bin'),
    dir('empty'),
    file('notes.txt'),
  );

  it('excluding a directory excludes its subtree, on both sides; excluded entries are never deleted', () => {
    const dest = listing(dir('build'), file('build/stale'), file('src.tmp'), file('gone'));
    const plan = planSync(source, dest, noState, filtered([], ['build', '*.tmp']));
    const touched = [
      ...plan.mkdirs,
      ...plan.copies.map((c) => c.source),
      ...plan.links,
      ...plan.deletes,
      ...plan.replaces,
    ].map((e) => e.key);
    for (const key of touched) {
      expect(key.split('/'), key).not.toContain('build');
      expect(key.endsWith('.tmp'), key).toBe(false);
    }
    expect(sorted(keys(plan.mkdirs))).toEqual(['docs', 'empty', 'src']);
    expect(sorted(plan.copies.map((c) => c.source.key))).toEqual([
      'docs/a.bin',
      'notes.txt',
      'src/main.txt',
    ]);
    expect(keys(plan.deletes)).toEqual(['gone']);
    // Only entries the filter keeps count for the mass-delete guard.
    expect(plan.destinationCount).toBe(1);
  });

  it('include keeps matching files and only the directories needed for them', () => {
    const plan = planSync(source, new Map(), noState, filtered(['*.txt'], []));
    expect(sorted(plan.copies.map((c) => c.source.key))).toEqual(['notes.txt', 'src/main.txt']);
    expect(keys(plan.mkdirs)).toEqual(['src']);
    expect(plan.dirs.map((d) => d.entry.key)).toEqual(['src']);
  });

  it('include of a directory keeps what lies below it', () => {
    const plan = planSync(source, new Map(), noState, filtered(['build'], []));
    expect(sorted(plan.copies.map((c) => c.source.key))).toEqual([
      'build/out.o',
      'build/sub/deep.o',
      'src/build/x',
    ]);
    expect(sorted(keys(plan.mkdirs))).toEqual(['build', 'build/sub', 'src', 'src/build']);
  });

  it('include never deletes a directory that still holds entries the filter protects', () => {
    // A mirror made without filters, then synced with --include '*.txt':
    // docs/ holds no .txt file, but docs/a.bin is protected (not included,
    // so never deleted); deleting docs/ cannot succeed and must not be planned.
    const plan = planSync(source, source, noState, filtered(['*.txt'], []));
    const deleted = keys(plan.deletes);
    for (const d of plan.deletes.filter((e) => e.kind === 'dir')) {
      const survivors = [...source.keys()].filter((k) => isBelow(k, d.key) && !deleted.includes(k));
      expect(survivors, `deleting ${d.key}`).toEqual([]);
    }
  });

  it('exclude never deletes a directory that still holds excluded entries', () => {
    const dest = listing(dir('old'), file('old/keep.tmp'), file('old/drop'));
    const plan = planSync(listing(), dest, noState, filtered([], ['*.tmp']));
    expect(keys(plan.deletes)).toEqual(['old/drop']);
  });
});

describe('planSync: order', () => {
  it('deletes deepest first and creates parents first', () => {
    // Listed children first, so that order comes from the planner.
    const source = listing(...['a/b/c/d', 'a/x', 'a/b/c', 'z', 'a/b', 'a'].map((k) => dir(k)));
    const destTree = listing(
      file('old/b/c/g'),
      dir('old'),
      file('old/top'),
      dir('old/b/c'),
      dir('old/b'),
      file('old/b/f'),
    );
    const plan = planSync(source, destTree, noState, opts());
    const mk = keys(plan.mkdirs);
    for (const [i, key] of mk.entries()) {
      const parent = parentKey(key);
      if (parent !== '') expect(mk.indexOf(parent), key).toBeLessThan(i);
    }
    const del = keys(plan.deletes);
    for (const [i, key] of del.entries()) {
      for (const [j, other] of del.entries())
        if (isBelow(other, key)) expect(j, other).toBeLessThan(i);
    }
    expect(sorted(del)).toEqual(['old', 'old/b', 'old/b/c', 'old/b/c/g', 'old/b/f', 'old/top']);
    const dirs = plan.dirs.map((d) => d.entry.key);
    for (const [i, key] of dirs.entries()) {
      const parent = parentKey(key);
      if (parent !== '') expect(dirs.indexOf(parent), key).toBeGreaterThan(i);
    }
  });
});

describe('planSync: saved state', () => {
  const row = (over: Partial<StateRow>): StateRow => ({
    key: 'f',
    kind: 'file',
    size: 10,
    mode: 0o644,
    hash: null,
    target: null,
    srcMtimeMs: T + 1,
    dstMtimeMs: T + 2,
    ...over,
  });
  const source = listing(file('f', 10, T + 1));
  const dest = listing(file('f', 10, T + 2));

  it('a row matching both sides mtimes makes a same-size file unchanged', () => {
    const plan = planSync(source, dest, () => row({}), opts());
    expect(plan.copies).toEqual([]);
    expect(plan.unchanged).toBe(1);
  });

  it('with a matching row, a mode change is metadata only', () => {
    const plan = planSync(listing(file('f', 10, T + 1, 0o600)), dest, () => row({}), opts());
    expect(plan.copies).toEqual([]);
    expect(actions(plan).metas).toEqual(['f']);
  });

  it('a stale row does not hide a change', () => {
    for (const stale of [
      row({ srcMtimeMs: T }),
      row({ dstMtimeMs: T }),
      row({ size: 11 }),
      row({ kind: 'symlink' }),
    ]) {
      const plan = planSync(source, dest, () => stale, opts());
      expect(plan.copies, JSON.stringify(stale)).toEqual([
        { source: source.get('f'), compare: true },
      ]);
    }
  });

  it('--mode full and --checksum compare even when size, mtime or state match', () => {
    const same = listing(file('g'));
    for (const over of [{ mode: 'full' as const }, { checksum: true }]) {
      expect(planSync(source, dest, () => row({}), opts(over)).copies).toEqual([
        { source: source.get('f'), compare: true },
      ]);
      expect(planSync(same, same, noState, opts(over)).copies).toEqual([
        { source: same.get('g'), compare: true },
      ]);
    }
  });

  it('looks the state up only for same-size files whose mtimes disagree', () => {
    const src = listing(
      file('a'),
      file('b', 10, T + 1),
      file('c', 11),
      link('l', 'x', T + 1),
      dir('d', 0o755, T + 1),
    );
    const dst = listing(file('a'), file('b'), file('c'), link('l', 'x'), dir('d'));
    const asked: Key[] = [];
    planSync(src, dst, (key) => void asked.push(key), opts());
    expect(asked).toEqual(['b']);
  });
});

// ---------------------------------------------------------------------------
// Properties on random listings.

const NAMES = ['a', 'b', 'c'];

interface Shape {
  readonly entry: Omit<Entry, 'key'>;
  readonly children: readonly (readonly [string, Shape])[];
}

const leafArb: fc.Arbitrary<Shape> = fc
  .oneof(
    fc.record({
      kind: fc.constant('file' as const),
      size: fc.integer({ min: 0, max: 2 }),
      mtimeMs: fc.constantFrom(T, T + 1, T + 2),
      mode: fc.constantFrom(0o644, 0o600),
    }),
    fc.record({
      kind: fc.constant('symlink' as const),
      size: fc.constant(0),
      mtimeMs: fc.constantFrom(T, T + 1),
      mode: fc.constant(0),
      target: fc.constantFrom('x', 'y'),
    }),
  )
  .map((entry) => ({ entry, children: [] }));

const { dir: dirShapeArb } = fc.letrec<{ node: Shape; dir: Shape }>((tie) => ({
  node: fc.oneof({ maxDepth: 3, depthIdentifier: 'planner' }, leafArb, tie('dir')),
  dir: fc.record({
    entry: fc.record({
      kind: fc.constant('dir' as const),
      size: fc.constant(0),
      mtimeMs: fc.constantFrom(T, T + 1),
      mode: fc.constantFrom(0o755, 0o700),
    }),
    children: fc.uniqueArray(fc.tuple(fc.constantFrom(...NAMES), tie('node')), {
      maxLength: 3,
      selector: ([name]) => name,
      depthIdentifier: 'planner',
    }),
  }),
}));

function flatten(shape: Shape, prefix = '', out = new Map<Key, Entry>()): Map<Key, Entry> {
  for (const [name, child] of shape.children) {
    const key = prefix === '' ? name : `${prefix}/${name}`;
    out.set(key, { ...child.entry, key });
    flatten(child, key, out);
  }
  return out;
}

const listingArb = dirShapeArb.map((shape) => flatten(shape));

/**
 * Two listings: independent, or the destination derived from the source by
 * random edits (drop a subtree, change size, mtime, mode, target or kind),
 * so that most keys exist on both sides.
 */
const pairArb: fc.Arbitrary<[Map<Key, Entry>, Map<Key, Entry>]> = fc.oneof(
  fc.tuple(listingArb, listingArb),
  fc
    .tuple(listingArb, fc.array(fc.nat({ max: 9 }), { minLength: 1, maxLength: 40 }))
    .map(
      ([source, edits]) => [source, derive(source, edits)] as [Map<Key, Entry>, Map<Key, Entry>],
    ),
);

function derive(source: ReadonlyMap<Key, Entry>, edits: readonly number[]): Map<Key, Entry> {
  const out = new Map<Key, Entry>();
  const dropped: Key[] = [];
  [...source.values()].forEach((e, i) => {
    if (dropped.some((d) => isBelow(e.key, d))) return;
    const edit = edits[i % edits.length]!;
    switch (edit) {
      case 1:
        dropped.push(e.key);
        return;
      case 2:
        if (e.kind === 'file') return void out.set(e.key, { ...e, size: e.size + 1 });
        break;
      case 3:
        return void out.set(e.key, { ...e, mtimeMs: e.mtimeMs + 7 });
      case 4:
        if (e.kind !== 'symlink') return void out.set(e.key, { ...e, mode: e.mode ^ 0o077 });
        return void out.set(e.key, { ...e, target: `${e.target ?? ''}z` });
      case 5:
        // Another kind: a directory becomes a file (its subtree goes), a leaf a directory.
        if (e.kind === 'dir') {
          dropped.push(e.key);
          return void out.set(e.key, file(e.key, 1));
        }
        out.set(e.key, dir(e.key));
        out.set(`${e.key}/extra`, file(`${e.key}/extra`, 2));
        return;
      case 6:
        if (e.kind === 'dir') out.set(`${e.key}/only-dest`, file(`${e.key}/only-dest`));
        break;
    }
    out.set(e.key, e);
  });
  return out;
}

/** The same listing with its insertion order scrambled. */
function reordered(map: ReadonlyMap<Key, Entry>, seed: number): Map<Key, Entry> {
  const list = [...map.values()];
  let x = seed >>> 0 || 1;
  for (let i = list.length - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    [list[i], list[j]] = [list[j]!, list[i]!];
  }
  return listing(...list);
}

/**
 * Applies a plan to a model of the destination in the engine's order
 * (replace, mkdir, copy, link, metadata, delete, directory times), noting
 * every step the filesystem would refuse: a missing parent, removing a
 * directory that is not empty, writing a file over a directory.
 */
function applyPlan(
  dest: ReadonlyMap<Key, Entry>,
  plan: Plan,
): { tree: Map<Key, Entry>; problems: string[] } {
  const tree = new Map(dest);
  const problems: string[] = [];
  const parentOk = (key: Key): boolean => {
    const p = parentKey(key);
    return p === '' || tree.get(p)?.kind === 'dir';
  };
  const remove = (e: Entry, step: string): void => {
    const cur = tree.get(e.key);
    if (cur === undefined) return; // already gone: the engine ignores ENOENT
    if (cur.kind === 'dir' && [...tree.keys()].some((k) => isBelow(k, e.key))) {
      problems.push(`${step} ${e.key}: directory not empty`);
    } else tree.delete(e.key);
  };
  const put = (e: Entry, step: string): void => {
    if (!parentOk(e.key)) problems.push(`${step} ${e.key}: no parent directory`);
    if (tree.get(e.key)?.kind === 'dir' && e.kind !== 'dir') {
      problems.push(`${step} ${e.key}: a directory is in the way`);
    } else tree.set(e.key, e);
  };
  for (const r of plan.replaces) {
    if (r.kind === 'dir')
      for (const d of plan.deletes) if (isBelow(d.key, r.key)) remove(d, 'replace');
    remove(r, 'replace');
  }
  for (const d of plan.mkdirs) put(d, 'mkdir');
  for (const c of plan.copies) put(c.source, 'copy');
  for (const l of plan.links) put(l, 'link');
  for (const m of plan.metas) {
    if (tree.get(m.entry.key)?.kind !== m.entry.kind)
      problems.push(`meta ${m.entry.key}: wrong kind`);
    tree.set(m.entry.key, m.entry);
  }
  for (const d of plan.deletes) remove(d, 'delete');
  for (const { entry } of plan.dirs) {
    if (tree.get(entry.key)?.kind !== 'dir')
      problems.push(`dir times ${entry.key}: not a directory`);
    else tree.set(entry.key, entry);
  }
  return { tree, problems };
}

const modeArb = fc.record({
  mode: fc.constantFrom('incremental' as const, 'full' as const),
  checksum: fc.boolean(),
});

describe('planSync: properties', () => {
  it('sync: applying the plan yields the source, in an order the filesystem accepts', () => {
    fc.assert(
      fc.property(pairArb, modeArb, ([source, dest], mode) => {
        const plan = planSync(source, dest, noState, opts(mode));
        const { tree, problems } = applyPlan(dest, plan);
        expect(problems).toEqual([]);
        expect(tree).toEqual(source);
        expect(plan.blocked).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  it('every kept source entry lands in exactly one action, or counts as unchanged', () => {
    fc.assert(
      fc.property(pairArb, fc.boolean(), modeArb, ([source, dest], mirror, mode) => {
        const plan = planSync(source, dest, noState, opts({ deleteExtraneous: mirror, ...mode }));
        const acted = [
          ...plan.mkdirs,
          ...plan.copies.map((c) => c.source),
          ...plan.links,
          ...plan.metas.map((m) => m.entry),
          ...plan.blocked,
        ].map((e) => e.key);
        expect(new Set(acted).size).toBe(acted.length);
        expect(acted.length + plan.unchanged).toBe(source.size);
        for (const key of acted) expect(source.has(key)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('sync is idempotent: a second plan over the result has nothing to do', () => {
    fc.assert(
      fc.property(pairArb, ([source, dest]) => {
        const { tree } = applyPlan(dest, planSync(source, dest, noState, opts()));
        const again = planSync(source, tree, noState, opts());
        expect(actions(again)).toEqual({
          replaces: [],
          mkdirs: [],
          copies: [],
          links: [],
          metas: [],
          deletes: [],
          blocked: [],
        });
        expect(again.unchanged).toBe(source.size);
      }),
      { numRuns: 300 },
    );
  });

  it('copy deletes nothing it does not replace, and applies cleanly around blocked entries', () => {
    fc.assert(
      fc.property(pairArb, ([source, dest]) => {
        const plan = planSync(source, dest, noState, opts({ deleteExtraneous: false }));
        expect(plan.deletes).toEqual([]);
        expect(plan.replaces.filter((r) => r.kind === 'dir')).toEqual([]);
        for (const b of plan.blocked) {
          expect(b.kind).not.toBe('dir');
          expect(dest.get(b.key)?.kind).toBe('dir');
        }
        const { tree, problems } = applyPlan(dest, plan);
        expect(problems).toEqual([]);
        const blocked = new Set(keys(plan.blocked));
        for (const [key, e] of source) if (!blocked.has(key)) expect(tree.get(key)).toEqual(e);
        // Whatever the source does not name survives.
        for (const [key, e] of dest) if (!source.has(key)) expect(tree.get(key)).toEqual(e);
      }),
      { numRuns: 500 },
    );
  });

  it('is deterministic: the order of the listings does not change the plan', () => {
    fc.assert(
      fc.property(
        pairArb,
        fc.integer(),
        fc.integer(),
        fc.boolean(),
        fc.constantFrom<[string[], string[]]>([[], []], [['a'], []], [[], ['b']], [['c'], ['a']]),
        ([source, dest], s1, s2, mirror, [include, exclude]) => {
          const o = filtered(include, exclude, { deleteExtraneous: mirror });
          const a = planSync(source, dest, noState, o);
          const b = planSync(reordered(source, s1), reordered(dest, s2), noState, o);
          expect(asSets(b)).toEqual(asSets(a));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps its order guarantees: mkdirs parents first, deletes and replaces deepest first', () => {
    fc.assert(
      fc.property(pairArb, fc.boolean(), ([source, dest], mirror) => {
        const plan = planSync(source, dest, noState, opts({ deleteExtraneous: mirror }));
        const before = (list: Key[], a: Key, b: Key): boolean => list.indexOf(a) < list.indexOf(b);
        const mk = keys(plan.mkdirs);
        for (const k of mk)
          if (mk.includes(parentKey(k))) expect(before(mk, parentKey(k), k)).toBe(true);
        for (const list of [
          keys(plan.deletes),
          keys(plan.replaces),
          plan.dirs.map((d) => d.entry.key),
        ]) {
          for (const a of list)
            for (const b of list) if (isBelow(b, a)) expect(before(list, b, a)).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('with filters: nothing filtered out is touched, and every delete can be carried out', () => {
    const patterns = fc.subarray(['a', 'b', 'c', 'a/b', '*/c'], { maxLength: 2 });
    fc.assert(
      fc.property(
        pairArb,
        patterns,
        patterns,
        fc.boolean(),
        ([source, dest], include, exclude, mirror) => {
          const o = filtered(include, exclude, { deleteExtraneous: mirror });
          const filter = createFilter(include, exclude);
          const plan = planSync(source, dest, noState, o);
          const ancestorsPass = (key: Key): boolean => {
            for (let p = parentKey(key); p !== ''; p = parentKey(p))
              if (!filter(p, 'dir')) return false;
            return true;
          };
          // Created, written and deleted entries pass the filter; a replaced
          // entry gives way to a source entry that passes it.
          const passes = (e: Entry): boolean => filter(e.key, e.kind) && ancestorsPass(e.key);
          for (const e of [
            ...plan.mkdirs,
            ...plan.copies.map((c) => c.source),
            ...plan.links,
            ...plan.deletes,
          ]) {
            expect(passes(e), e.key).toBe(true);
          }
          for (const r of plan.replaces) expect(passes(source.get(r.key)!), r.key).toBe(true);
          if (include.length > 0) {
            // Directories are created only for the files and links they will hold.
            const kept = [...plan.copies.map((c) => c.source), ...plan.links].map((e) => e.key);
            for (const d of plan.mkdirs)
              expect(
                kept.some((k) => isBelow(k, d.key)),
                d.key,
              ).toBe(true);
          }
          const { problems } = applyPlan(dest, plan);
          expect(problems).toEqual([]);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('a saved row matching both sides spares the content compare; full and checksum ignore it', () => {
    fc.assert(
      fc.property(pairArb, fc.func(fc.boolean()), modeArb, ([source, dest], remembered, mode) => {
        const rows = new Map<Key, StateRow>();
        for (const [key, s] of source) {
          const d = dest.get(key);
          if (s.kind !== 'file' || d?.kind !== 'file' || s.size !== d.size || !remembered(key))
            continue;
          rows.set(key, {
            key,
            kind: 'file',
            size: s.size,
            mode: s.mode,
            hash: null,
            target: null,
            srcMtimeMs: s.mtimeMs,
            dstMtimeMs: d.mtimeMs,
          });
        }
        const plan = planSync(source, dest, (key) => rows.get(key), opts(mode));
        const copied = new Map(plan.copies.map((c) => [c.source.key, c.compare]));
        const quick = mode.mode === 'incremental' && !mode.checksum;
        for (const key of rows.keys()) {
          if (quick) expect(copied.has(key), key).toBe(false);
          else expect(copied.get(key), key).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});
