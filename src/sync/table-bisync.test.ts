import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Row } from '../endpoints/table/canonical.js';
import { MemoryDatabase, MemoryTable } from '../endpoints/table/memory-table.js';
import type { TableSchema } from '../endpoints/table/table-schema.js';
import { bisyncTables, type ConflictPolicy } from './table-bisync.js';
import { TableSyncState } from './table-state.js';

const dir = mkdtempSync(join(tmpdir(), 'tongbu-bisync-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

const SCHEMA: TableSchema = {
  key: ['id'],
  columns: [
    { name: 'id', type: 'int', nullable: false },
    { name: 'name', type: 'text', nullable: true },
    { name: 'score', type: 'numeric', nullable: true },
    { name: 'updated_at', type: 'timestamp', nullable: true },
  ],
};
const T0 = '2026-01-01 00:00:00';
const base: Row[] = [1, 2, 3, 4, 5].map((i) => [i, `n${i}`, `${i}.5`, T0]);

function setup() {
  const db = new MemoryDatabase();
  db.load('a', SCHEMA, base);
  db.load('b', SCHEMA, base);
  const statePath = join(dir, `s${n++}.db`);
  const run = (policy: ConflictPolicy = 'newer', dryRun = false) =>
    bisyncTables({
      a: new MemoryTable(db, 'a'),
      b: new MemoryTable(db, 'b'),
      policy,
      openConflictTable: async (side) => Promise.resolve(new MemoryTable(db, `${side}_conflicts`)),
      dryRun,
      force: false,
      statePath,
    });
  const set = (t: string, id: number, r: Row | undefined) => {
    const rows = db.rows(t).filter((x) => x[0] !== id);
    db.load(t, SCHEMA, r === undefined ? rows : [...rows, r]);
  };
  return { db, run, set, statePath };
}

describe('table bisync', () => {
  it('propagates inserts, updates and deletes both ways', async () => {
    const t = setup();
    await t.run();
    t.set('a', 1, [1, 'changed in a', '1.5', '2026-02-01 00:00:00']);
    t.set('b', 2, undefined);
    t.set('b', 9, [9, 'new in b', null, T0]);
    t.set('a', 8, [8, 'new in a', '8', T0]);
    const s = await t.run();
    expect(s.toB).toEqual({ inserted: 1, updated: 1, deleted: 0 });
    expect(s.toA).toEqual({ inserted: 1, updated: 0, deleted: 1 });
    expect(s.conflicts).toEqual([]);
    expect(t.db.rows('a')).toEqual(t.db.rows('b'));
    expect(t.db.rows('a').map((r) => r[0])).toEqual([1, 3, 4, 5, 8, 9]);
  });

  it('merges a row both sides changed in different columns', async () => {
    const t = setup();
    await t.run();
    t.set('a', 3, [3, 'renamed in a', '3.5', T0]);
    t.set('b', 3, [3, 'n3', '99', T0]);
    const s = await t.run();
    expect(s.merged).toBe(1);
    expect(t.db.rows('a').find((r) => r[0] === 3)).toEqual([3, 'renamed in a', '99', T0]);
    expect(t.db.rows('b')).toEqual(t.db.rows('a'));
    const recorded = TableSyncState.open(t.statePath, 'memory:a', 'memory:b').conflicts();
    expect(recorded.map((c) => c.resolution)).toEqual(['merged']);
  });

  it('newer: the later timestamp wins; keep-both keeps the loser in a conflict table', async () => {
    const t = setup();
    await t.run();
    t.set('a', 4, [4, 'a wins', '4.5', '2026-03-01 00:00:00']);
    t.set('b', 4, [4, 'b loses', '4.5', '2026-02-01 00:00:00']);
    t.set('a', 5, [5, 'a loses', '5.5', '2026-02-01 00:00:00']);
    t.set('b', 5, [5, 'b wins', '5.5', '2026-03-01 00:00:00']);
    const s = await t.run('keep-both');
    expect(s.conflicts.map((c) => [c.key, c.winner, c.kept])).toEqual([
      ['4', 'a', 'b'],
      ['5', 'b', 'a'],
    ]);
    expect(t.db.rows('a')).toEqual(t.db.rows('b'));
    expect(
      t.db
        .rows('a')
        .filter((r) => r[0] === 4 || r[0] === 5)
        .map((r) => r[1]),
    ).toEqual(['a wins', 'b wins']);
    expect(t.db.rows('b_conflicts').map((r) => r[3])).toEqual(['b loses']);
    expect(t.db.rows('a_conflicts').map((r) => r[3])).toEqual(['a loses']);
    expect(TableSyncState.open(t.statePath, 'memory:a', 'memory:b').conflicts()).toHaveLength(2);
  });

  it('fail: names the conflicting keys and writes nothing; source/target pick a side', async () => {
    const t = setup();
    await t.run();
    t.set('a', 2, [2, 'a', '2.5', T0]);
    t.set('b', 2, [2, 'b', '2.5', T0]);
    t.set('a', 9, [9, 'harmless insert', null, T0]);
    const err = await t.run('fail').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CONFLICT' });
    expect((err as Error).message).toContain(': 2;');
    expect(t.db.rows('b').some((r) => r[0] === 9)).toBe(false);
    await t.run('target');
    expect(t.db.rows('a').find((r) => r[0] === 2)?.[1]).toBe('b');
    expect(t.db.rows('a')).toEqual(t.db.rows('b'));
  });

  it('a first run without a base unions both tables; a missing table is created', async () => {
    const db = new MemoryDatabase();
    db.load('a', SCHEMA, base);
    const s = await bisyncTables({
      a: new MemoryTable(db, 'a'),
      b: new MemoryTable(db, 'b'),
      policy: 'source',
      openConflictTable: async (side) => Promise.resolve(new MemoryTable(db, `${side}_c`)),
      dryRun: false,
      force: false,
      statePath: join(dir, `first${n++}.db`),
    });
    expect(s.firstRun).toBe(true);
    expect(s.toB.inserted).toBe(5);
    expect(s.conflicts).toEqual([]);
    expect(db.rows('b')).toEqual(base);
  });
});
