/**
 * Every canonical type round-trips between every pair of engines (SQLite,
 * PostgreSQL, MariaDB): sync creates the target table with mapped types,
 * the rows read back equal the source's, verify agrees, and an
 * incremental run and a bisync across engines land what changed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareKeys, type Row } from '../endpoints/table/canonical.js';
import { openTable } from '../endpoints/table/open-table.js';
import type { TableEndpoint } from '../endpoints/table/table-endpoint.js';
import { normalizeRows, SUITE_SCHEMA, suiteRows } from '../endpoints/table/table-endpoint-suite.js';
import mysql from 'mysql2/promise';
import pgDriver from 'pg';
import {
  MYSQL_URL,
  PG_URL,
  databaseAvailable,
  tableUrl,
  uniqueTable,
} from '../test-support/databases.js';
import { bisyncTables } from './table-bisync.js';
import { syncTable } from './table-sync.js';
import { verifyTables } from './table-verify.js';

const pgOk = await databaseAvailable('postgres');
const myOk = await databaseAvailable('mysql');
const dir = mkdtempSync(join(tmpdir(), 'tongbu-matrix-'));
const made: string[] = [];

type Engine = 'sqlite' | 'postgres' | 'mysql';
function url(engine: Engine, table: string): string {
  made.push(`${engine}\u0000${table}`);
  return engine === 'sqlite'
    ? `sqlite:${join(dir, 'm.db')}?table=${table}`
    : tableUrl(engine, table);
}

async function rowsOf(ep: TableEndpoint): Promise<Row[]> {
  const out: Row[] = [];
  for await (const b of ep.scan()) out.push(...b);
  return out;
}

async function load(spec: string, rows: readonly Row[]): Promise<void> {
  const ep = await openTable(spec);
  await ep.open();
  const w = await ep.beginWrite({ create: SUITE_SCHEMA });
  await w.insert(SUITE_SCHEMA.columns, rows);
  await w.commit();
  await ep.close();
}

afterAll(async () => {
  const drops = made.map((m) => m.split('\u0000') as [Engine, string]);
  if (pgOk) {
    const c = new pgDriver.Client({ connectionString: PG_URL });
    await c.connect();
    for (const [e, t] of drops) if (e === 'postgres') await c.query(`DROP TABLE IF EXISTS "${t}"`);
    await c.end();
  }
  if (myOk) {
    const c = await mysql.createConnection(MYSQL_URL);
    for (const [e, t] of drops) if (e === 'mysql') await c.query(`DROP TABLE IF EXISTS \`${t}\``);
    await c.end();
  }
  rmSync(dir, { recursive: true, force: true });
});

const engines: Engine[] = [
  'sqlite',
  ...(pgOk ? (['postgres'] as const) : []),
  ...(myOk ? (['mysql'] as const) : []),
];
const pairs = engines.flatMap((a) => engines.filter((b) => b !== a).map((b) => [a, b] as const));

describe.skipIf(!pgOk || !myOk)('type round trip between every pair of engines', () => {
  it.each(pairs)('%s → %s: every type, NULLs, Unicode and a large row', async (from, to) => {
    const rows = suiteRows(200);
    const big = 'x'.repeat(1 << 20) + '末';
    rows.push([
      99_999_999n,
      1,
      '1',
      1,
      big,
      new Uint8Array(1 << 20).fill(7),
      true,
      null,
      null,
      null,
      '[]',
      null,
    ]);
    rows.sort((x, y) => compareKeys([x[0]!], [y[0]!]));
    const src = url(from, uniqueTable(`mx_${from}`));
    const dst = url(to, uniqueTable(`mx_${to}`));
    await load(src, rows);
    const summary = await syncTable({
      command: 'sync',
      source: await openTable(src),
      dest: await openTable(dst),
      mode: 'incremental',
      cursor: 'n',
      dryRun: false,
      force: false,
      statePath: join(dir, 'state.db'),
    });
    expect(summary.method).toBe('create');
    const target = await openTable(dst);
    await target.open();
    expect(target.schema?.columns.map((c) => c.type)).toEqual(
      SUITE_SCHEMA.columns.map((c) => c.type),
    );
    expect(normalizeRows(await rowsOf(target))).toEqual(normalizeRows(rows));
    await target.close();
    const report = await verifyTables(await openTable(src), await openTable(dst));
    expect(report).toMatchObject({ equal: true, sourceRows: rows.length });

    // Incremental: one row changed at a higher cursor, one deleted.
    const s = await openTable(src);
    await s.open();
    const w = await s.beginWrite();
    await w.upsert(SUITE_SCHEMA.columns, [
      [
        9n,
        2147483647,
        '9.9',
        9.5,
        'changed ü',
        null,
        false,
        null,
        null,
        null,
        '{"z":1,"a":2}',
        null,
      ],
    ]);
    await w.delete([[12n]]);
    await w.commit();
    await s.close();

    const inc = await syncTable({
      command: 'sync',
      source: await openTable(src),
      dest: await openTable(dst),
      mode: 'incremental',
      cursor: 'n',
      dryRun: false,
      force: false,
      statePath: join(dir, 'state.db'),
    });
    expect(inc).toMatchObject({ method: 'cursor', rows: { updated: 1, deleted: 1, inserted: 0 } });
    expect((await verifyTables(await openTable(src), await openTable(dst))).equal).toBe(true);
  });

  it.each(pairs)('%s ⇄ %s: bisync merges both sides', async (from, to) => {
    const rows = suiteRows(20);
    const a = url(from, uniqueTable(`bx_${from}`));
    const b = url(to, uniqueTable(`bx_${to}`));
    await load(a, rows);
    const run = async () =>
      bisyncTables({
        a: await openTable(a),
        b: await openTable(b),
        policy: 'fail',
        openConflictTable: () => Promise.reject(new Error('no conflicts expected')),
        dryRun: false,
        force: false,
        statePath: join(dir, 'bisync.db'),
      });
    await run();
    const edit = async (spec: string, upsert: Row[], del: Row[]) => {
      const ep = await openTable(spec);
      await ep.open();
      const w = await ep.beginWrite();
      if (upsert.length > 0) await w.upsert(SUITE_SCHEMA.columns, upsert);
      if (del.length > 0) await w.delete(del);
      await w.commit();
      await ep.close();
    };
    const r9 = rows.find((r) => r[0] === 9n)!;
    await edit(a, [[9n, 1, ...r9.slice(2)]], [[12n]]);
    await edit(
      b,
      [
        [9n, r9[1]!, '777', ...r9.slice(3)],
        [5000n, 5, '5', 5, 'from b', null, null, null, null, null, null, null],
      ],
      [],
    );
    const s = await run();
    expect(s.merged).toBe(1);
    expect(s.conflicts).toEqual([]);
    expect((await verifyTables(await openTable(a), await openTable(b))).equal).toBe(true);
    const back = await openTable(a);
    await back.open();
    const got = (await rowsOf(back)).find((r) => r[0] === 9n);
    expect([got?.[1], got?.[2]]).toEqual([1, '777']);
    await back.close();
  });
});
