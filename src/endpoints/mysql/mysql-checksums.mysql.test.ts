import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { isTongbuError } from '../../core/errors.js';
import { databaseAvailable, uniqueTable } from '../../test-support/databases.js';
import { checksumRows, inRange, type KeyRange, type Row } from '../table/canonical.js';
import type { Column, TableSchema } from '../table/table-schema.js';
import { collect, dropTables, openTable, sql } from './mysql-test-suite.js';

const ok = await databaseAvailable('mysql');
const made: string[] = [];
const fresh = (): string => {
  const t = uniqueTable('tb_myck');
  made.push(t);
  return t;
};
afterAll(async () => {
  if (ok) await dropTables(made);
});

/** The reference: checksumRows over the rows scan returns, per range. */
async function reference(t: string, columns: readonly Column[], ranges: readonly KeyRange[]) {
  const ep = await openTable(t);
  const schema = ep.schema!;
  const pick = columns.map((c) => schema.columns.findIndex((s) => s.name === c.name));
  const keyIdx = schema.key.map((k) => schema.columns.findIndex((s) => s.name === k));
  const rows = await collect(ep.scan());
  await ep.close();
  return ranges.map((r) =>
    checksumRows(
      columns,
      rows
        .filter((row) =>
          inRange(
            keyIdx.map((i) => row[i]!),
            r,
          ),
        )
        .map((row) => pick.map((i) => row[i]!)),
    ),
  );
}

/** Random doubles from random bits, plus the awkward ones. */
function doubles(n: number): number[] {
  const out = [
    0.1, 1e-7, 1e21, 123456789.125, -0, 0, 5e-324, 1e15, 1e-4, 9.999999999999999e-5, 1e-5,
    123456789012345680000,
  ];
  const buf = Buffer.alloc(8);
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) & 255;
  while (out.length < n) {
    for (let j = 0; j < 8; j++) buf[j] = rand();
    const v = buf.readDoubleLE(0);
    if (Number.isFinite(v)) out.push(v);
    out.push((rand() - 128) * 10 ** ((rand() % 44) - 22));
  }
  return out;
}

describe.skipIf(!ok)('MysqlTable checksums', () => {
  it('equal checksumRows over every native type, ranges and column subsets', async () => {
    const t = fresh();
    const values = [
      `(1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
      `(2, 0, -128, 65535, 4294967295, 18446744073709551615, -0.5, 0.1, -2.5e-300, '', '', 'x', '00:00:00', 'é', X'', X'00ff', '1000-01-01 00:00:00', '1970-01-01 00:00:01', '0001-01-01', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')`,
      `(3, 7, 127, 0, 0, 0, 12345678.125, -3.4e38, 1e21, 'naïve', 'tab\\there', 'y', '-838:59:59.5', 'ü', X'61', X'', '2026-11-24 12:00:00.5', '2038-01-19 03:14:07.999999', '9999-12-31', '00000000-0000-0000-0000-000000000000')`,
      `(4, 1, 0, 1, 1, 1, 0, 1e-7, 123456789.125, ' x ', '\\\\', 'x', '12:00:00.001', '', X'0a0d', X'5c', '2000-02-29 23:59:59.000001', '2001-09-09 01:46:40.5', '2000-02-29', 'ffffffff-ffff-ffff-ffff-ffffffffffff')`,
    ];
    await sql(
      `CREATE TABLE ${t} (id INT PRIMARY KEY, flag BOOLEAN, ti TINYINT, us SMALLINT UNSIGNED, ui INT UNSIGNED,
        ub BIGINT UNSIGNED, d DECIMAL(20,4), fl FLOAT, db DOUBLE, c CHAR(8), txt TEXT, en ENUM('x','y'),
        tm TIME(3), lat VARCHAR(9) CHARACTER SET latin1, bn BINARY(2), vb BLOB, dt DATETIME(6),
        ts TIMESTAMP(6) NULL, dd DATE, u UUID)`,
      `INSERT INTO ${t} VALUES ${values.join(',')}`,
    );
    const ep = await openTable(t);
    const cols = ep.schema!.columns;
    const ranges: KeyRange[] = [
      {},
      { from: [2] },
      { to: [3] },
      { from: [2], to: [4] },
      { from: [9] },
    ];
    expect(await ep.checksums(cols, ranges)).toEqual(await reference(t, cols, ranges));
    const sub = [cols[9]!, cols[0]!, cols[7]!];
    expect(await ep.checksums(sub, [{}])).toEqual(await reference(t, sub, [{}]));
    expect(await ep.checksums([], [{}])).toEqual(await reference(t, [], [{}]));
    await ep.close();
  });

  it('equal checksumRows for floats of every magnitude, and for JSON (hashed in JS)', async () => {
    const t = fresh();
    const xs = doubles(3000);
    await sql(`CREATE TABLE ${t} (id INT PRIMARY KEY, x DOUBLE, f FLOAT, j JSON)`);
    for (let i = 0; i < xs.length; i += 500) {
      const chunk = xs.slice(i, i + 500).map((x, k) => {
        const f = Math.abs(x) < 3e38 ? String(x) : 'NULL';
        return `(${i + k}, ${String(x)}, ${f}, '{"x": ${i + k}, "a": [1.50, "é"]}')`;
      });
      await sql(`INSERT INTO ${t} VALUES ${chunk.join(',')}`);
    }
    const ep = await openTable(t);
    const rows = await collect(ep.scan());
    expect(rows.map((r) => r[1])).toEqual(xs.map((x) => (Object.is(x, -0) ? 0 : x)));
    const cols = ep.schema!.columns;
    const ranges: KeyRange[] = [{}, { from: [100], to: [2000] }];
    expect(await ep.checksums(cols.slice(0, 3), ranges)).toEqual(
      await reference(t, cols.slice(0, 3), ranges),
    );
    expect(await ep.checksums(cols, ranges)).toEqual(await reference(t, cols, ranges));
    await ep.close();
  });

  it('native checksums agree for equal tables and differ when a row does', async () => {
    const schema: TableSchema = {
      key: ['id'],
      columns: [
        { name: 'id', type: 'bigint', nullable: false },
        { name: 's', type: 'text', nullable: true },
        { name: 'f', type: 'float', nullable: true },
        { name: 'j', type: 'json', nullable: true },
      ],
    };
    const rows: Row[] = Array.from({ length: 500 }, (_, i) => [
      BigInt(i),
      i % 7 === 0 ? null : `s${i}`,
      i / 3,
      `{"a":${i}}`,
    ]);
    const [a, b] = [fresh(), fresh()];
    for (const t of [a, b]) {
      const ep = await openTable(t);
      const w = await ep.beginWrite({ create: schema });
      await w.insert(schema.columns, rows);
      await w.commit();
      await ep.close();
    }
    const [ea, eb] = [await openTable(a), await openTable(b)];
    const cols = ea.schema!.columns;
    expect(ea.native.nativeChecksumId(cols)).toBe(eb.native.nativeChecksumId(eb.schema!.columns));
    const ranges: KeyRange[] = [{}, { from: [10n], to: [300n] }];
    const na = await ea.native.nativeChecksums(cols, ranges);
    expect(await eb.native.nativeChecksums(cols, ranges)).toEqual(na);
    expect(na.map((c) => c.count)).toEqual([500, 290]);
    // JSON equal in value but not in text still agrees.
    await sql(`UPDATE ${b} SET j = '{ "a" : 11 }' WHERE id = 11`);
    expect(await eb.native.nativeChecksums(cols, ranges)).toEqual(na);
    await sql(`UPDATE ${b} SET s = '' WHERE id = 14`);
    const changed = await eb.native.nativeChecksums(cols, ranges);
    expect(changed[0]!.sum).not.toBe(na[0]!.sum);
    expect(changed[1]!.sum).not.toBe(na[1]!.sum);
    await sql(
      `UPDATE ${b} SET s = NULL WHERE id = 14`,
      `UPDATE ${b} SET f = f + 1e-9 WHERE id = 20`,
    );
    expect((await eb.native.nativeChecksums(cols, ranges))[0]!.sum).not.toBe(na[0]!.sum);
    await ea.close();
    await eb.close();
  });

  it('an abort stops a running checksum', async () => {
    const t = fresh();
    await sql(
      `CREATE TABLE ${t} (id INT PRIMARY KEY, s TEXT)`,
      `INSERT INTO ${t} VALUES (1, 'a'), (2, 'b')`,
    );
    const ep = await openTable(t);
    const ac = new AbortController();
    ac.abort();
    const err = await ep
      .checksums(ep.schema!.columns, [{}], { signal: ac.signal })
      .catch((e: unknown) => e);
    expect(isTongbuError(err, 'ABORTED'), String(err)).toBe(true);
    const slow = await openTable(t, `&where=${encodeURIComponent('SLEEP(2) = 0')}`);
    const ac2 = new AbortController();
    const started = Date.now();
    setTimeout(() => ac2.abort(), 200);
    const err2 = await slow
      .checksums(slow.schema!.columns, [{}], { signal: ac2.signal })
      .catch((e: unknown) => e);
    expect(isTongbuError(err2, 'ABORTED'), inspect(err2)).toBe(true);
    expect(Date.now() - started).toBeLessThan(1500);
    await slow.close();
    await ep.close();
  });
});
