import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { databaseAvailable } from '../../test-support/databases.js';
import {
  checksumRows,
  compareKeys,
  floatText,
  inRange,
  type KeyRange,
  type Row,
} from '../table/canonical.js';
import { normalizeRows } from '../table/table-endpoint-suite.js';
import type { Column, TableSchema } from '../table/table-schema.js';
import { floatTextSql } from './postgres-checksums.js';
import { collect } from '../../test-support/table-tests.js';
import { pgTestTables } from './postgres-test-suite.js';

const ok = await databaseAvailable('postgres');

/** Doubles PostgreSQL 15 prints with more digits than the shortest (8.264155800000001e+19). */
const QUIRKY = [
  8.2641558e19, 8.3489e20, -2.0030184e21, 4.52025e20, 3.29945447e19, 5.85878143283e17, 2.048e26,
];

/** A double read from a short decimal with any exponent: most likely to print short. */
function shortDecimal(): number {
  let m = String(1 + Math.floor(Math.random() * 9));
  const digits = Math.floor(Math.random() * 12);
  for (let d = 0; d < digits; d++) m += String(Math.floor(Math.random() * 10));
  const sign = Math.random() < 0.5 ? '-' : '';
  return Number(`${sign}${m[0]}.${m.slice(1)}e${Math.floor(Math.random() * 80) - 40}`);
}

describe.skipIf(!ok)('PostgresTable reads', () => {
  const { admin, made, fresh, open } = pgTestTables('tb_pg');
  const create = async (t: string, schema: TableSchema, rows: readonly Row[]): Promise<void> => {
    const ep = await open(t);
    const w = await ep.beginWrite({ create: schema });
    await w.insert(schema.columns, rows);
    await w.commit();
    await ep.close();
  };
  afterAll(async () => {
    for (const t of made) await admin.query(`DROP TABLE IF EXISTS "${t}"`);
    await admin.end();
  });

  it('maps native types to canonical types and values', async () => {
    const t = fresh();
    await admin.query(`CREATE TABLE "${t}" (id integer PRIMARY KEY, s smallint, b bigint, n numeric(10,3),
      nn numeric, r real, d double precision, vc varchar(5), c char(4), tx text, by bytea, bo boolean,
      ts timestamp(3), tz timestamptz, dt date, j json, jb jsonb, u uuid, iv interval, arr int[])`);
    await admin.query(`INSERT INTO "${t}" VALUES (1, -32768, -9223372036854775808, -0.500, 123.4500, 0.1, 1e21,
      'ab', 'x', E'tab\\there\\\\ \\n', '\\x00ff', true, '2020-01-02 03:04:05.120', '2020-01-02 03:04:05.5+02',
      '2020-02-29', '{"b": 1, "a": [1, 2]}', '{"b": 1, "a": 2}', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
      '1 day 02:00:00', '{1,2}'), (2, 0, 0, 0.000, -0, '-0', '-0', '', '', '', '', false,
      '1970-01-01 00:00:00', '1970-01-01 00:00:00+00', '0001-01-01', '[]', 'null', '00000000-0000-0000-0000-000000000000',
      '0', '{}')`);
    await admin.query(`INSERT INTO "${t}" (id) VALUES (3)`);
    const ep = await open(t);
    const cols = ep.schema!.columns;
    expect(cols.map((c) => c.type)).toEqual([
      'int', 'int', 'bigint', 'numeric', 'numeric', 'float', 'float', 'text', 'text', 'text', 'blob', 'bool',
      'timestamp', 'timestamptz', 'date', 'json', 'json', 'uuid', 'text', 'text',
    ]); // prettier-ignore
    expect(cols[3]).toMatchObject({ precision: 10, scale: 3, nativeType: 'numeric(10,3)' });
    expect(cols[7]).toMatchObject({ precision: 5, nativeType: 'character varying(5)' });
    expect(cols[18]).toMatchObject({ nativeType: 'interval' });
    expect(cols[0]?.nullable).toBe(false);
    const rows = await collect(ep.scan());
    expect(normalizeRows(rows)).toEqual(
      normalizeRows([
        [
          1, -32768, -9223372036854775808n, '-0.5', '123.45', 0.1, 1e21, 'ab', 'x', 'tab\there\\ \n',
          Buffer.from([0, 255]), true, '2020-01-02 03:04:05.12', '2020-01-02 01:04:05.5+00', '2020-02-29',
          '{"a":[1,2],"b":1}', '{"a":2,"b":1}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1 day 02:00:00', '{1,2}',
        ],
        [
          2, 0, 0n, '0', '0', -0, -0, '', '', '', Buffer.alloc(0), false, '1970-01-01 00:00:00',
          '1970-01-01 00:00:00+00', '0001-01-01', '[]', 'null', '00000000-0000-0000-0000-000000000000',
          '00:00:00', '{}',
        ],
        [3, ...new Array<null>(19).fill(null)],
      ]), // prettier-ignore
    );
    expect(Object.is(rows[1]![6], -0)).toBe(true);
    // Checksums in SQL (no json) and in JS (json) equal the reference.
    const noJson = cols.filter((c) => c.type !== 'json');
    const pick = (cs: readonly Column[]): Row[] =>
      rows.map((r) => cs.map((c) => r[cols.indexOf(c)]!));
    expect(await ep.checksums(noJson, [{}])).toEqual([checksumRows(noJson, pick(noJson))]);
    expect(await ep.checksums(cols, [{}, { from: [2] }])).toEqual([
      checksumRows(cols, rows),
      checksumRows(cols, rows.slice(1)),
    ]);
    expect(await ep.fetch([[3], [1], [7]])).toEqual([rows[0], rows[2]]);
    await ep.close();
  });

  it('reads and hashes floats exactly like floatText, real columns too', async () => {
    const t = fresh();
    await admin.query(`CREATE TABLE "${t}" (id bigint PRIMARY KEY, f double precision, r real)`);
    const specials = [
      0, -0, 0.1, 1e-7, 1e21, 1e15, 1e14, 123456789012345.6, 5e-324, Number.MAX_VALUE, -1.5e-7, 1e-4,
      1e-5, 0.30000000000000004, NaN, Infinity, -Infinity, 2 ** 53, 3.4028235e38, 1.17549435e-38,
    ]; // prettier-ignore
    const values: number[] = [...specials, ...QUIRKY];
    const view = new DataView(new ArrayBuffer(8));
    for (let i = 0; i < 6000; i++) {
      if (i % 3 === 0) {
        randomBytes(8).copy(new Uint8Array(view.buffer));
        const v = view.getFloat64(0);
        if (Number.isFinite(v)) values.push(v);
      } else if (i % 3 === 1) {
        values.push((Math.random() - 0.5) * 10 ** Math.floor(Math.random() * 40 - 20));
      } else {
        values.push(shortDecimal());
      }
    }
    const ep = await open(t);
    const cols = ep.schema!.columns;
    const w = await ep.beginWrite();
    const inRealRange = (v: number): number =>
      Math.abs(v) < 3e38 && (v === 0 || Math.abs(v) > 1e-37) ? v : 1;
    await w.insert(
      cols,
      values.map((v, i) => [BigInt(i), v, inRealRange(v)]),
    );
    await w.commit();
    const rows = await collect(ep.scan());
    expect(rows.length).toBe(values.length);
    for (const [i, f, r] of rows as [bigint, number, number][]) {
      const v = values[Number(i)]!;
      expect(Object.is(f, v)).toBe(true);
      expect(Math.fround(r)).toBe(Math.fround(inRealRange(v)));
    }
    const texts = await admin.query<{ t: string }>(
      `SELECT ${floatTextSql('v::float8')} AS t FROM unnest($1::text[]) WITH ORDINALITY AS u(v, i) ORDER BY i`,
      [values.map(floatText)],
    );
    expect(texts.rows.map((r) => r.t)).toEqual(values.map(floatText));
    const ranges: KeyRange[] = Array.from({ length: 20 }, (_v, i) => ({
      from: [BigInt(i * 500)],
      to: [BigInt(i * 500 + 500)],
    }));
    expect(await ep.checksums(cols, ranges)).toEqual(
      ranges.map((range) =>
        checksumRows(
          cols,
          rows.filter((r) => inRange([r[0]!], range)),
        ),
      ),
    );
    expect(await ep.checksums(cols, [{}])).toEqual([checksumRows(cols, rows)]);
    await ep.close();
  });

  it('hashes tricky values of every type in SQL exactly as checksumRows does', async () => {
    const t = fresh();
    const schema: TableSchema = {
      key: ['id'],
      columns: [
        { name: 'id', type: 'text', nullable: false },
        { name: 'n', type: 'numeric', nullable: true },
        { name: 'f', type: 'float', nullable: true },
        { name: 'at', type: 'timestamp', nullable: true },
        { name: 'atz', type: 'timestamptz', nullable: true },
        { name: 'b', type: 'blob', nullable: true },
        { name: 'ok', type: 'bool', nullable: true },
        { name: 'day', type: 'date', nullable: true },
        { name: 'u', type: 'uuid', nullable: true },
        { name: 'i', type: 'int', nullable: true },
        { name: 'big', type: 'bigint', nullable: true },
      ],
    };
    const rows: Row[] = [
      ['', '-0.001', 0.1, '2020-01-01 00:00:00.000001', '2020-01-01 23:59:59.9+00', new Uint8Array([0]), true,
        '2024-02-29', 'ffffffff-ffff-ffff-ffff-ffffffffffff', -1, -(2n ** 63n)],
      ['é', '12345678901234567890.123456789', 1e-7, '9999-12-31 23:59:59.999999', '1970-01-01 00:00:00+00',
        new Uint8Array([]), false, '1000-01-01', null, 2147483647, 2n ** 63n - 1n],
      ['😀 \\ \t', '0', -0, null, null, null, null, null, null, 0, 0n],
      ['a\nb', '-12.5', 1e21, '2000-01-01 00:00:00', '2000-01-01 00:00:00.5+00', new Uint8Array([255, 10]), true,
        '2000-01-01', '00000000-0000-0000-0000-000000000001', null, null],
    ]; // prettier-ignore
    await create(t, schema, rows);
    const ep = await open(t);
    const scanned = await collect(ep.scan());
    const sorted = [...rows].sort((a, b) => compareKeys([a[0]!], [b[0]!]));
    expect(normalizeRows(scanned)).toEqual(normalizeRows(sorted));
    const ranges: KeyRange[] = [{}, { to: ['a'] }, { from: ['a'], to: ['é'] }, { from: ['é'] }];
    const want = ranges.map((r) =>
      checksumRows(
        schema.columns,
        sorted.filter((row) => inRange([row[0]!], r)),
      ),
    );
    expect(await ep.checksums(schema.columns, ranges)).toEqual(want);
    const sub = [schema.columns[3]!, schema.columns[1]!];
    expect(await ep.checksums(sub, [{}])).toEqual([
      checksumRows(
        sub,
        sorted.map((r) => [r[3]!, r[1]!]),
      ),
    ]);
    await ep.close();
  });

  it('native checksums agree on equal tables and differ where a row differs', async () => {
    const [a, b] = [fresh(), fresh()];
    const schema: TableSchema = {
      key: ['id'],
      columns: [
        { name: 'id', type: 'bigint', nullable: false },
        { name: 'name', type: 'text', nullable: true },
        { name: 'x', type: 'float', nullable: true },
        { name: 'doc', type: 'json', nullable: true },
      ],
    };
    const rows: Row[] = Array.from({ length: 1000 }, (_v, i) => [
      BigInt(i),
      i % 7 === 0 ? null : `n${i}`,
      i / 3,
      `{"i":${i}}`,
    ]);
    await create(a, schema, rows);
    await create(
      b,
      schema,
      rows.map((r) => (r[0] === 500n ? [500n, 'changed', r[2]!, r[3]!] : r)),
    );
    const [ea, eb] = [await open(a), await open(b)];
    const cols = ea.schema!.columns;
    expect(ea.native.nativeChecksumId(cols)).toBe(eb.native.nativeChecksumId(cols));
    expect(ea.native.nativeChecksumId(cols)).toBe(
      'postgres:hre1:bigint,text,double precision,jsonb',
    );
    const ranges: KeyRange[] = [{ to: [500n] }, { from: [500n], to: [501n] }, { from: [501n] }];
    const na = await ea.native.nativeChecksums(cols, ranges);
    const nb = await eb.native.nativeChecksums(cols, ranges);
    expect(na.map((s) => s.count)).toEqual([500, 1, 499]);
    expect(nb[0]).toEqual(na[0]);
    expect(nb[2]).toEqual(na[2]);
    expect(nb[1]).not.toEqual(na[1]);
    await ea.close();
    await eb.close();
  });

  it('honours range on composite keys, since, and the where= filter on every read', async () => {
    const t = fresh();
    await admin.query(
      `CREATE TABLE "${t}" (a text, b int, grp int, at timestamp, PRIMARY KEY (a, b))`,
    );
    await admin.query(
      `INSERT INTO "${t}" SELECT chr(97 + i % 5), i, i % 4, timestamp '2026-01-01' + i * interval '1 minute'
       FROM generate_series(1, 100) AS i`,
    );
    const where = `&where=${encodeURIComponent('grp <> 3')}`;
    const all = await open(t);
    const ep = await open(t, where);
    const rows = (await collect(all.scan())).filter((r) => r[2] !== 3);
    expect(await collect(ep.scan({ batchRows: 9 }))).toEqual(rows);
    const range = { from: ['b', 50], to: ['d', 3] };
    const inR = rows.filter((r) => inRange([r[0]!, r[1]!], range));
    expect(await collect(ep.scan({ range }))).toEqual(inR);
    expect(await ep.count(range)).toBe(inR.length);
    const since = { column: 'at', value: '2026-01-01 01:00:00' };
    expect(await collect(ep.scan({ range, since }))).toEqual(
      inR.filter((r) => (r[3] as string) >= since.value),
    );
    const wanted = (r: Row): boolean =>
      (r[0] === 'a' && (r[1] === 3 || r[1] === 5)) || (r[0] === 'b' && r[1] === 1);
    expect(
      await ep.fetch([
        ['a', 3],
        ['a', 5],
        ['b', 1],
      ]),
    ).toEqual(rows.filter(wanted));
    expect(await ep.maxValue('grp')).toBe(2);
    expect(await ep.checksums(ep.schema!.columns, [range])).toEqual([
      checksumRows(ep.schema!.columns, inR),
    ]);
    const points = await ep.splitPoints(5, range);
    for (const p of points) expect(inRange(p, range)).toBe(true);
    const bad = await open(t, `&where=${encodeURIComponent('nosuch > 1')}`);
    await expect(bad.count()).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    await expect(collect(bad.scan())).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    expect(await ep.count()).toBe(rows.length);
    for (const e of [all, ep, bad]) await e.close();
  });

  it('splits large ranges by sampling and integer keys by arithmetic', async () => {
    const t = fresh();
    await admin.query(
      `CREATE TABLE "${t}" AS SELECT lpad(i::text, 7, '0') AS k, i FROM generate_series(1, 250000) AS i`,
    );
    await admin.query(`ALTER TABLE "${t}" ADD PRIMARY KEY (k)`);
    const ep = await open(t);
    const points = await ep.splitPoints(8);
    expect(points.length).toBeGreaterThanOrEqual(6);
    for (let i = 1; i < points.length; i++)
      expect(compareKeys(points[i - 1]!, points[i]!)).toBeLessThan(0);
    const bounds = [undefined, ...points, undefined];
    const sizes = await Promise.all(
      bounds
        .slice(1)
        .map((to, i) =>
          ep.count({ ...(bounds[i] ? { from: bounds[i] } : {}), ...(to ? { to } : {}) }),
        ),
    );
    expect(sizes.reduce((s, n) => s + n)).toBe(250000);
    for (const n of sizes) expect(n).toBeLessThan(250000 / 2);
    const byInt = await open(t, '&key=i');
    expect(await byInt.splitPoints(4, { from: [101], to: [201] })).toEqual([[126], [151], [176]]);
    await ep.close();
    await byInt.close();
  });

  it('refuses values without a canonical form, naming the column', async () => {
    const t = fresh();
    await admin.query(
      `CREATE TABLE "${t}" (id int PRIMARY KEY, day date, at timestamp, n numeric)`,
    );
    await admin.query(
      `INSERT INTO "${t}" VALUES (1, '0044-03-15 BC', NULL, NULL), (2, NULL, 'infinity', 'NaN')`,
    );
    const ep = await open(t);
    await expect(collect(ep.scan({ range: { to: [2] } }))).rejects.toMatchObject({
      code: 'BAD_ARGUMENT',
      message: expect.stringContaining('"day"') as string,
    });
    await expect(ep.fetch([[2]])).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    await ep.close();
  });

  it('stops a scan on abort and keeps the pool usable', async () => {
    const t = fresh();
    await admin.query(
      `CREATE TABLE "${t}" AS SELECT i AS id, md5(i::text) AS s FROM generate_series(1, 50000) AS i`,
    );
    await admin.query(`ALTER TABLE "${t}" ADD PRIMARY KEY (id)`);
    const ep = await open(t);
    const ac = new AbortController();
    let seen = 0;
    const run = async (): Promise<void> => {
      for await (const batch of ep.scan({ batchRows: 1000, signal: ac.signal })) {
        seen += batch.length;
        ac.abort();
      }
    };
    await expect(run()).rejects.toMatchObject({ code: 'ABORTED' });
    expect(seen).toBeLessThan(50000);
    let first = 0;
    for await (const batch of ep.scan({ batchRows: 10 })) {
      first = batch.length;
      break;
    }
    expect(first).toBe(10);
    expect(await ep.count()).toBe(50000);
    const cols = ep.schema!.columns;
    await expect(ep.checksums(cols, [{}], { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ABORTED',
    });
    const slow = new AbortController();
    const pending = ep.checksums(cols, [{}, {}, {}, {}, {}, {}], { signal: slow.signal });
    setTimeout(() => slow.abort(), 20);
    await expect(pending).rejects.toMatchObject({ code: 'ABORTED' });
    expect(await ep.count({ from: [10], to: [20] })).toBe(10);
    await ep.close();
  });
});
