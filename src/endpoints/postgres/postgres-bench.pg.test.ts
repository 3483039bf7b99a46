/**
 * Throughput of the PostgreSQL endpoint, run by hand:
 *   TONGBU_PG_BENCH=1 npx vitest run src/endpoints/postgres/postgres-bench.pg.test.ts
 * Loads 1M rows × 10 columns into a new table, scans them, and checksums
 * (portable and native) a 10M-row table `vt` when the database has one.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { databaseAvailable, PG_URL, tableUrl, uniqueTable } from '../../test-support/databases.js';
import { checksumRows, type Row } from '../table/canonical.js';
import type { TableSchema } from '../table/table-schema.js';
import { parseTableUrl } from '../table/table-url.js';
import { PostgresTable } from './postgres-table.js';

const wanted = process.env['TONGBU_PG_BENCH'] === '1';
const ok = wanted && (await databaseAvailable('postgres'));
const ROWS = Number(process.env['TONGBU_PG_BENCH_ROWS'] ?? 1_000_000);

const SCHEMA: TableSchema = {
  key: ['id'],
  columns: [
    { name: 'id', type: 'bigint', nullable: false },
    { name: 'run_id', type: 'int', nullable: true },
    { name: 'name', type: 'text', nullable: true },
    { name: 'score', type: 'numeric', nullable: true, precision: 12, scale: 4 },
    { name: 'loss', type: 'float', nullable: true },
    { name: 'step', type: 'bigint', nullable: true },
    { name: 'created', type: 'timestamptz', nullable: true },
    { name: 'flag', type: 'bool', nullable: true },
    { name: 'tag', type: 'text', nullable: true, precision: 32 },
    { name: 'updated_at', type: 'timestamp', nullable: true },
  ],
};

function row(i: number): Row {
  const s = String(i % 60).padStart(2, '0');
  return [
    BigInt(i),
    i % 1000,
    `run-${i}`,
    `${Math.floor(i / 7)}.${i % 7}`,
    i / 3,
    BigInt(i * 10),
    `2026-04-25 04:40:${s}+00`,
    i % 2 === 0,
    `tag${i % 100}`,
    `2026-01-01 02:44:${s}.${i % 1000}`,
  ];
}

const log = (what: string, rows: number, ms: number): void =>
  console.log(
    `${what}: ${rows} rows in ${(ms / 1000).toFixed(2)} s = ${Math.round((rows / ms) * 1000)} rows/s`,
  );

describe.skipIf(!ok)('PostgresTable throughput', () => {
  const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
  const t = process.env['TONGBU_PG_BENCH_TABLE'] ?? uniqueTable('tb_pg_bench');
  afterAll(async () => {
    if (process.env['TONGBU_PG_BENCH_KEEP'] !== '1')
      await admin.query(`DROP TABLE IF EXISTS "${t}"`);
    await admin.end();
  });

  it('loads, scans and checksums 1M rows', async () => {
    const ep = new PostgresTable(parseTableUrl(tableUrl('postgres', t)));
    await ep.open();
    const batches: Row[][] = [];
    for (let at = 0; at < ROWS; at += 5000) {
      const batch: Row[] = [];
      for (let i = at; i < Math.min(ROWS, at + 5000); i++) batch.push(row(i));
      batches.push(batch);
    }
    let start = performance.now();
    const w = await ep.beginWrite({ create: SCHEMA });
    for (const batch of batches) await w.insert(SCHEMA.columns, batch);
    batches.length = 0;
    await w.commit();
    log('insert (create, COPY, primary key at commit)', ROWS, performance.now() - start);
    start = performance.now();
    let n = 0;
    for await (const batch of ep.scan()) n += batch.length;
    log('scan', n, performance.now() - start);
    expect(n).toBe(ROWS);
    start = performance.now();
    const sums = await ep.checksums(SCHEMA.columns, [{}]);
    log('checksums (1 range)', ROWS, performance.now() - start);
    const some: Row[] = [];
    for await (const batch of ep.scan({ range: { to: [20_000n] } })) some.push(...batch);
    expect(await ep.checksums(SCHEMA.columns, [{ to: [20_000n] }])).toEqual([
      checksumRows(SCHEMA.columns, some),
    ]);
    expect(sums[0]?.count).toBe(ROWS);
    await ep.close();
  }, 600_000);

  it('checksums the 10M-row table vt', async () => {
    const exists = await admin.query<{ e: boolean }>(`SELECT to_regclass('vt') IS NOT NULL AS e`);
    if (exists.rows[0]?.e !== true) return;
    const ep = new PostgresTable(parseTableUrl(tableUrl('postgres', 'vt')));
    await ep.open();
    const cols = ep.schema!.columns;
    const total = await ep.count();
    for (const parts of [1, 2, 4]) {
      const points = await ep.splitPoints(parts);
      const bounds = [undefined, ...points, undefined];
      const ranges = bounds
        .slice(1)
        .map((to, i) => ({ ...(bounds[i] ? { from: bounds[i] } : {}), ...(to ? { to } : {}) }));
      let start = performance.now();
      await ep.checksums(cols, ranges);
      log(`portable checksums, ${ranges.length} ranges`, total, performance.now() - start);
      start = performance.now();
      await ep.native.nativeChecksums(cols, ranges);
      log(`native checksums, ${ranges.length} ranges`, total, performance.now() - start);
    }
    const start = performance.now();
    let n = 0;
    for await (const batch of ep.scan({ range: { to: [1_000_000n] } })) n += batch.length;
    log('vt scan of 1M rows', n, performance.now() - start);
    const rows: Row[] = [];
    for await (const batch of ep.scan({ range: { from: [5_000_000n], to: [5_200_000n] } }))
      rows.push(...batch);
    expect(await ep.checksums(cols, [{ from: [5_000_000n], to: [5_200_000n] }])).toEqual([
      checksumRows(cols, rows),
    ]);
    await ep.close();
  }, 600_000);
});
