import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ProgressEvent } from '../core/progress.js';
import type { Row } from '../endpoints/table/canonical.js';
import { MemoryDatabase, MemoryTable } from '../endpoints/table/memory-table.js';
import type { TableSchema } from '../endpoints/table/table-schema.js';
import { syncTable, type TableSyncRequest } from './table-sync.js';
import { verifyTables } from './table-verify.js';

const dir = mkdtempSync(join(tmpdir(), 'tongbu-table-sync-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

const SCHEMA: TableSchema = {
  key: ['id'],
  columns: [
    { name: 'id', type: 'bigint', nullable: false },
    { name: 'name', type: 'text', nullable: true },
    { name: 'loss', type: 'float', nullable: true },
    { name: 'updated_at', type: 'timestamp', nullable: true },
  ],
};

const at = (i: number): string =>
  `2026-01-01 00:${String(Math.floor(i / 60) % 60).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}`;
const row = (i: number, name = `r${i}`, t = at(i)): Row => [BigInt(i), name, i / 4, t];

function setup(count: number) {
  const db = new MemoryDatabase();
  db.load(
    'src',
    SCHEMA,
    Array.from({ length: count }, (_, i) => row(i + 1)),
  );
  const state = join(dir, `state-${n++}.db`);
  const run = async (over: Partial<TableSyncRequest> = {}) =>
    syncTable({
      command: 'sync',
      source: new MemoryTable(db, 'src'),
      dest: new MemoryTable(db, 'dst'),
      mode: 'incremental',
      dryRun: false,
      force: false,
      statePath: state,
      ...over,
    });
  const equal = async () =>
    (await verifyTables(new MemoryTable(db, 'src'), new MemoryTable(db, 'dst'))).equal;
  return { db, run, equal, state };
}

describe('table sync', () => {
  it('creates an absent destination and copies every row', async () => {
    const t = setup(12_345);
    const events: ProgressEvent[] = [];
    const s = await t.run({ onProgress: (e) => events.push(e) });
    expect(events.at(-1)).toMatchObject({
      unit: 'rows',
      phase: 'transfer',
      files: 12_345,
      totalFiles: 12_345,
    });
    expect(s.method).toBe('create');
    expect(s.rows.inserted).toBe(12_345);
    expect(t.db.rows('dst')).toEqual(t.db.rows('src'));
    expect(await t.equal()).toBe(true);
  });

  it('moves only the differing rows of an existing table, and copy never deletes', async () => {
    const t = setup(20_000);
    await t.run();
    const src = t.db.tables.get('src')!;
    const dst = t.db.tables.get('dst')!;
    // Change 3 rows in the source, delete 2 there, add 1 only to the destination.
    t.db.load(
      'src',
      SCHEMA,
      t.db
        .rows('src')
        .filter((r) => r[0] !== 5n && r[0] !== 19_999n)
        .map((r) =>
          r[0] === 7n || r[0] === 8_000n || r[0] === 15_000n ? row(Number(r[0]), 'changed') : r,
        ),
    );
    t.db.load('dst', SCHEMA, [...t.db.rows('dst'), row(50_000)]);
    void src;
    void dst;
    const copy = await t.run({ command: 'copy', mode: 'full' });
    expect(copy.method).toBe('compare');
    expect(copy.rows).toMatchObject({ inserted: 0, updated: 3, deleted: 0 });
    expect(t.db.rows('dst').length).toBe(20_001);
    const sync = await t.run({ mode: 'full' });
    expect(sync.rows).toMatchObject({ inserted: 0, updated: 0, deleted: 3 });
    expect(t.db.rows('dst')).toEqual(t.db.rows('src'));
  });

  it('incremental by cursor: changed rows, rows sharing the cursor value, deletes and rows the cursor missed', async () => {
    const t = setup(30_000);
    const first = await t.run({ cursor: 'updated_at' });
    expect(first.method).toBe('create');
    const late = '2030-01-01 00:00:00';
    let rows = t.db.rows('src');
    rows = rows.filter((r) => r[0] !== 100n && r[0] !== 29_000n);
    rows = rows.map((r) =>
      r[0] === 10n || r[0] === 20_000n ? row(Number(r[0]), 'moved', late) : r,
    );
    rows.push(row(40_000, 'new', late), row(40_001, 'new too', late));
    // Inserted with an old cursor value: only the key-set comparison sees it.
    rows.push(row(40_002, 'backdated', '2000-01-01 00:00:00'));
    t.db.load('src', SCHEMA, rows);
    const s = await t.run({ cursor: 'updated_at' });
    expect(s.method).toBe('cursor');
    expect(s.rows).toMatchObject({ inserted: 3, updated: 2, deleted: 2 });
    expect(s.rows.read).toBeLessThan(20_000);
    expect(t.db.rows('dst')).toEqual(t.db.rows('src'));
    // Another row at the saved cursor value, written after that run, is not skipped.
    t.db.load('src', SCHEMA, [...t.db.rows('src'), row(40_003, 'same instant', late)]);
    const again = await t.run({ cursor: 'updated_at' });
    expect(again.rows.inserted).toBe(1);
    expect(t.db.rows('dst')).toEqual(t.db.rows('src'));
  });

  it('incremental finds scattered deletes by key buckets without reading every key', async () => {
    const t = setup(50_000);
    await t.run({ cursor: 'updated_at' });
    // One row in 1,000 deleted, spread over the table (the benchmark's density).
    const rows = t.db.rows('src').filter((r) => Number(r[0]) % 997 !== 0);
    rows.push(row(70_000, 'backdated', '2000-01-01 00:00:00'));
    t.db.load('src', SCHEMA, rows);
    const s = await t.run({ cursor: 'updated_at', maxDelete: '5%' });
    expect(s.method).toBe('cursor');
    expect(s.rows).toMatchObject({ deleted: 50, inserted: 1 });
    expect(s.rows.read).toBeLessThan(20_000);
    expect(t.db.rows('dst')).toEqual(t.db.rows('src'));
  });

  it('the mass-delete guard refuses before writing; --dry-run writes nothing', async () => {
    const t = setup(100);
    await t.run();
    t.db.load('src', SCHEMA, t.db.rows('src').slice(0, 10));
    const before = t.db.rows('dst');
    await expect(t.run()).rejects.toMatchObject({ code: 'MASS_DELETE' });
    expect(t.db.rows('dst')).toEqual(before);
    const dry = await t.run({ dryRun: true, force: true });
    expect(dry.rows.deleted).toBe(90);
    expect(dry.plan?.length).toBe(90);
    expect(t.db.rows('dst')).toEqual(before);
    await t.run({ maxDelete: '90' });
    expect(t.db.rows('dst')).toEqual(t.db.rows('src'));
  });

  it('refuses incompatible schemas naming the columns, writing nothing', async () => {
    const t = setup(10);
    t.db.load(
      'dst',
      {
        key: ['id'],
        columns: [
          { name: 'id', type: 'bigint', nullable: false },
          { name: 'name', type: 'int', nullable: true },
        ],
      },
      [],
    );
    const err = await t.run().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'SCHEMA_MISMATCH' });
    expect((err as Error).message).toMatch(/column "name" is text .* but int/);
    expect((err as Error).message).toMatch(/column "loss" is missing/);
    expect(t.db.rows('dst')).toEqual([]);
  });

  it('a missing source table is SOURCE_NOT_FOUND', async () => {
    const db = new MemoryDatabase();
    await expect(
      syncTable({
        command: 'sync',
        source: new MemoryTable(db, 'nope'),
        dest: new MemoryTable(db, 'dst'),
        mode: 'full',
        dryRun: false,
        force: false,
        statePath: join(dir, 'x.db'),
      }),
    ).rejects.toMatchObject({ code: 'SOURCE_NOT_FOUND' });
  });
});

describe('table verify', () => {
  it('names the one differing, missing and extra keys among 50,000 rows', async () => {
    const t = setup(50_000);
    await t.run();
    t.db.load(
      'dst',
      SCHEMA,
      t.db
        .rows('dst')
        .filter((r) => r[0] !== 31_337n)
        .map((r) => (r[0] === 25_000n ? row(25_000, 'x') : r))
        .concat([row(60_000)]),
    );
    const r = await verifyTables(new MemoryTable(t.db, 'src'), new MemoryTable(t.db, 'dst'));
    expect(r.equal).toBe(false);
    expect(r).toMatchObject({ missing: ['31337'], extra: ['60000'], different: ['25000'] });
    expect(r.rowsRead).toBeLessThan(30_000);
  });
});
