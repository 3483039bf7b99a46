import { afterAll, describe, expect, it } from 'vitest';
import { databaseAvailable, uniqueTable } from '../../test-support/databases.js';
import { compareKeys, rowKey, type Row } from '../table/canonical.js';
import type { TableSchema } from '../table/table-schema.js';
import { collect, dropTables, failure, openTable, plain, sql } from './mysql-test-suite.js';

const ok = await databaseAvailable('mysql');
const made: string[] = [];
const fresh = (p = 'tb_my'): string => {
  const t = uniqueTable(p);
  made.push(t);
  return t;
};
afterAll(async () => {
  if (ok) await dropTables(made);
});

const EDGE_SCHEMA: TableSchema = {
  key: ['id'],
  columns: [
    { name: 'id', type: 'int', nullable: false },
    { name: 'b', type: 'bigint', nullable: true },
    { name: 'dec', type: 'numeric', nullable: true, precision: 30, scale: 10 },
    { name: 'f', type: 'float', nullable: true },
    { name: 'txt', type: 'text', nullable: true },
    { name: 'vc', type: 'text', nullable: true, precision: 20 },
    { name: 'at', type: 'timestamp', nullable: true },
    { name: 'atz', type: 'timestamptz', nullable: true },
    { name: 'doc', type: 'json', nullable: true },
    { name: 'uid', type: 'uuid', nullable: true },
  ],
};

const FLOATS = [
  0.1, 1e-7, 1e21, 123456789.125, 5e-324, -1.7976931348623157e308, 1e15, 1e-4, 0.30000000000000004,
  -2.5e-5,
];

function edgeRows(): Row[] {
  return FLOATS.map((f, i) => [
    i,
    i % 2 === 0 ? -9223372036854775808n : 9223372036854775807n,
    i % 2 === 0 ? '-12345678901234567890.0000000001' : '0.5',
    f,
    ['', '😀 emoji', 'tab\there', "quote ' \\ back", 'é', 'x\u0000y'][i % 6]!,
    i % 3 === 0 ? null : `v${i}`,
    ['2026-01-01 00:00:00', '1000-01-01 00:00:00.000001', '9999-12-31 23:59:59.999999'][i % 3]!,
    ['1970-01-01 00:00:01+00', '2038-01-19 03:14:07.999999+00', '2001-09-09 01:46:40.5+00'][i % 3]!,
    ['{"a":1,"b":[true,null,"é"]}', '[]', '"s"', '1.5', 'null'][i % 5]!,
    i % 2 === 0 ? 'ffffffff-ffff-ffff-ffff-ffffffffffff' : null,
  ]);
}

describe.skipIf(!ok)('MysqlTable', () => {
  it('round-trips edge values of every type', async () => {
    const t = fresh();
    const ep = await openTable(t);
    expect(ep.schema).toBeUndefined();
    const w = await ep.beginWrite({ create: EDGE_SCHEMA });
    const rows = edgeRows();
    await w.insert(EDGE_SCHEMA.columns, rows);
    await w.commit();
    expect(ep.schema?.columns.map((c) => c.type)).toEqual(EDGE_SCHEMA.columns.map((c) => c.type));
    expect(plain(await collect(ep.scan({ batchRows: 3 })))).toEqual(plain(rows));
    await ep.close();
  });

  it('maps native types, including MariaDB JSON and UUID', async () => {
    const t = fresh();
    await sql(
      `CREATE TABLE ${t} (id BIGINT UNSIGNED PRIMARY KEY, a TINYINT(1), b TINYINT, c SMALLINT UNSIGNED,
        d INT UNSIGNED, e DECIMAL(9,3), f FLOAT, g DOUBLE, h CHAR(36), i VARCHAR(12), j MEDIUMTEXT,
        k ENUM('x','y'), l TIME(3), m YEAR, n BINARY(3), o VARBINARY(9), p BLOB, q DATETIME,
        r TIMESTAMP(3) NULL, s DATE, u JSON, v UUID) DEFAULT CHARSET=latin1`,
      `INSERT INTO ${t} VALUES (18446744073709551615, 1, -128, 65535, 4294967295, -0.5, 0.1, 2.5, 'ABC',
        'é', 'long', 'y', '-838:59:59.5', 2155, 'ab', 'xyz', '', '2020-02-29 12:34:56',
        '2020-02-29 12:34:56.125', '2020-02-29', '{"b": 1, "a": 2}', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11')`,
    );
    const ep = await openTable(t);
    expect(ep.schema?.columns.map((c) => [c.name, c.type, c.precision, c.scale])).toEqual([
      ['id', 'numeric', 20, 0],
      ['a', 'bool', undefined, undefined],
      ['b', 'int', undefined, undefined],
      ['c', 'int', undefined, undefined],
      ['d', 'bigint', undefined, undefined],
      ['e', 'numeric', 9, 3],
      ['f', 'float', undefined, undefined],
      ['g', 'float', undefined, undefined],
      ['h', 'text', 36, undefined],
      ['i', 'text', 12, undefined],
      ['j', 'text', undefined, undefined],
      ['k', 'text', undefined, undefined],
      ['l', 'text', undefined, undefined],
      ['m', 'int', undefined, undefined],
      ['n', 'blob', undefined, undefined],
      ['o', 'blob', undefined, undefined],
      ['p', 'blob', undefined, undefined],
      ['q', 'timestamp', undefined, undefined],
      ['r', 'timestamptz', undefined, undefined],
      ['s', 'date', undefined, undefined],
      ['u', 'json', undefined, undefined],
      ['v', 'uuid', undefined, undefined],
    ]);
    expect(plain(await collect(ep.scan()))).toEqual([
      [
        '18446744073709551615',
        true,
        -128,
        65535,
        4294967295n,
        '-0.5',
        Math.fround(0.1),
        2.5,
        'ABC',
        'é',
        'long',
        'y',
        '-838:59:59.500',
        2155,
        'hex:616200',
        'hex:78797a',
        'hex:',
        '2020-02-29 12:34:56',
        '2020-02-29 12:34:56.125+00',
        '2020-02-29',
        '{"a":2,"b":1}',
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      ],
    ]);
    await ep.close();
  });

  it('orders text keys by code point in any collation, and UUID keys by their text', async () => {
    const names = ['a', 'B', 'é', '😀', 'z', '', 'a ', 'a\t', '\uffff', 'Z'];
    for (const collation of ['utf8mb4_nopad_bin', 'utf8mb4_bin', 'utf8mb4_unicode_ci']) {
      const t = fresh();
      const distinct = collation.endsWith('_ci')
        ? names.filter((n) => !['Z', 'a ', 'a\t'].includes(n))
        : names;
      const usable = collation === 'utf8mb4_bin' ? distinct.filter((n) => n !== 'a ') : distinct;
      await sql(
        `CREATE TABLE ${t} (k VARCHAR(10) COLLATE ${collation} PRIMARY KEY, n INT)`,
        `INSERT INTO ${t} VALUES ${usable.map((n, i) => `('${n.replace(/\t/g, '\\t')}', ${i})`).join(',')}`,
      );
      const ep = await openTable(t);
      const expected = [...usable].sort((x, y) => compareKeys([x], [y]));
      const keys = (await collect(ep.scanKeys({ batchRows: 2 }))).map((k) => k[0]);
      expect(keys, collation).toEqual(expected);
      const from = expected[3]!;
      const tail = await collect(ep.scan({ range: { from: [from], to: [expected[6]!] } }));
      expect(tail.map((r) => r[0])).toEqual(expected.slice(3, 6));
      const points = await ep.splitPoints(3);
      expect(points.length).toBe(2);
      expect(compareKeys(points[0]!, points[1]!)).toBeLessThan(0);
      expect(await ep.maxValue('k')).toBe(expected[expected.length - 1]);
      const got = await ep.fetch([['😀'], ['A'], ['a']]);
      expect(got.map((r) => r[0])).toEqual(['a', '😀']);
      await ep.close();
    }
    const t = fresh();
    const uuids = [
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      '00000000-0000-1000-8000-000000000002',
      'ffffffff-0000-0000-0000-000000000001',
      '10000000-0000-0000-ffff-000000000003',
    ];
    await sql(
      `CREATE TABLE ${t} (u UUID PRIMARY KEY)`,
      `INSERT INTO ${t} VALUES ${uuids.map((u) => `('${u}')`).join(',')}`,
    );
    const ep = await openTable(t);
    expect((await collect(ep.scanKeys())).map((k) => k[0])).toEqual([...uuids].sort());
    await ep.close();
  });

  it('reads by composite range, cursor and where=', async () => {
    const t = fresh();
    await sql(
      `CREATE TABLE ${t} (a INT, b VARCHAR(8) COLLATE utf8mb4_nopad_bin, c DATETIME(6), PRIMARY KEY (a, b))`,
      `INSERT INTO ${t} VALUES ${Array.from({ length: 60 }, (_, i) => `(${i % 6}, 'k${i}', '2026-01-01 00:00:${String(i).padStart(2, '0')}.5')`).join(',')}`,
    );
    const ep = await openTable(t);
    const all = await collect(ep.scan({ batchRows: 7 }));
    expect(all.map((r) => [r[0], r[1]])).toEqual(
      [...all]
        .sort((x, y) => compareKeys(rowKey(x, [0, 1]), rowKey(y, [0, 1])))
        .map((r) => [r[0], r[1]]),
    );
    const range = { from: [2, 'k20'], to: [4, 'k22'] };
    const inRange = await collect(ep.scan({ range, batchRows: 4 }));
    expect(inRange).toEqual(
      all.filter(
        (r) =>
          compareKeys([r[0]!, r[1]!], range.from) >= 0 && compareKeys([r[0]!, r[1]!], range.to) < 0,
      ),
    );
    expect(await ep.count(range)).toBe(inRange.length);
    const since = await collect(
      ep.scan({ since: { column: 'c', value: '2026-01-01 00:00:55.5' } }),
    );
    expect(since.map((r) => r[1]).sort()).toEqual(['k55', 'k56', 'k57', 'k58', 'k59']);
    const splits = await ep.splitPoints(4);
    expect(splits.length).toBe(3);
    await ep.close();
    const filtered = await openTable(
      t,
      `&where=${encodeURIComponent('a = 1 AND c < "2026-01-01 00:00:30"')}`,
    );
    expect((await collect(filtered.scan())).map((r) => r[1])).toEqual([
      'k1',
      'k13',
      'k19',
      'k25',
      'k7',
    ]);
    expect(await filtered.count()).toBe(5);
    expect(await filtered.maxValue('b')).toBe('k7');
    await filtered.close();
  });

  it('upserts, deletes, and rolls back a create by dropping the table', async () => {
    const t = fresh();
    const ep = await openTable(t);
    const schema: TableSchema = {
      key: ['k'],
      columns: [
        { name: 'k', type: 'blob', nullable: false },
        { name: 'v', type: 'text', nullable: true },
      ],
    };
    let w = await ep.beginWrite({ create: schema });
    await w.insert(schema.columns, [[Buffer.from('a'), 'x']]);
    await w.rollback();
    expect((await sql(`SHOW TABLES LIKE '${t}'`))[0]).toEqual([]);
    w = await ep.beginWrite({ create: schema });
    const rows: Row[] = Array.from({ length: 3000 }, (_, i) => [Buffer.from(`k${i}`), `v${i}`]);
    await w.insert(schema.columns, rows);
    await w.commit();
    expect(await ep.count()).toBe(3000);
    w = await ep.beginWrite();
    await w.upsert(schema.columns, [
      [Buffer.from('k1'), 'changed'],
      [Buffer.from('new'), null],
    ]);
    await w.delete(rows.slice(100).map((r) => [r[0]!]));
    await w.commit();
    expect(plain(await collect(ep.scan()))).toEqual(
      plain(
        [
          ...rows.slice(0, 100).map((r) => (r[1] === 'v1' ? [r[0]!, 'changed'] : r)),
          [Buffer.from('new'), null],
        ].sort((a, b) => compareKeys([a[0]!], [b[0]!])),
      ),
    );
    const again = await failure(ep.beginWrite({ create: schema }));
    expect(again.code).toBe('CONFLICT');
    await ep.close();
  });

  it('refuses bad values with the column named, and leaves the table as it was', async () => {
    const t = fresh();
    const ep = await openTable(t);
    const schema: TableSchema = {
      key: ['id'],
      columns: [
        { name: 'id', type: 'int', nullable: false },
        { name: 'atz', type: 'timestamptz', nullable: true },
        { name: 'f', type: 'float', nullable: true },
      ],
    };
    const w = await ep.beginWrite({ create: schema });
    await w.insert(schema.columns, [[1, '2000-01-01 00:00:00+00', 1]]);
    await w.commit();
    const w2 = await ep.beginWrite();
    await w2.insert(schema.columns, [[2, '2040-01-01 00:00:00+00', 1]]);
    const err = await failure(w2.commit());
    expect(err.code).toBe('BAD_ARGUMENT');
    expect(err.message).toContain('atz');
    const w3 = await ep.beginWrite();
    expect((await failure(w3.insert(schema.columns, [[3, null, Number.NaN]]))).code).toBe(
      'BAD_ARGUMENT',
    );
    await w3.rollback();
    expect(await ep.count()).toBe(1);
    await ep.close();
  });

  it('loads doubles exactly, refuses keys it already holds, and survives stopped scans', async () => {
    const t = fresh();
    const ep = await openTable(t);
    const schema: TableSchema = {
      key: ['k'],
      columns: [
        { name: 'k', type: 'text', nullable: false },
        { name: 'x', type: 'float', nullable: true },
      ],
    };
    const buf = Buffer.alloc(8);
    const rows: Row[] = [];
    for (let i = 0; rows.length < 5000; i++) {
      for (let j = 0; j < 8; j++) buf[j] = (i * 7919 + j * 104729 + ((i * j) % 251)) & 255;
      const x = buf.readDoubleLE(0);
      if (Number.isFinite(x) && !Object.is(x, -0)) rows.push([`k${String(i).padStart(5, '0')}`, x]);
    }
    const w = await ep.beginWrite({ create: schema });
    await w.insert(schema.columns, rows);
    await w.commit();
    expect(await collect(ep.scan({ batchRows: 999 }))).toEqual(rows);
    const dup = await ep.beginWrite();
    await dup.insert(schema.columns, [['new', 1], rows[10]!]);
    expect((await failure(dup.commit())).code).toBe('CONFLICT');
    expect(await ep.count()).toBe(rows.length);
    for (let i = 0; i < 5; i++) {
      for await (const batch of ep.scan({ batchRows: 100 })) {
        expect(batch.length).toBe(100);
        break;
      }
    }
    const ac = new AbortController();
    const seen: number[] = [];
    const err = await failure(
      (async () => {
        for await (const batch of ep.scan({ batchRows: 1000, signal: ac.signal })) {
          seen.push(batch.length);
          ac.abort();
        }
      })(),
    );
    expect([err.code, seen]).toEqual(['ABORTED', [1000]]);
    await ep.close();
    // The same through the streamed path (a key in a case-insensitive collation).
    const ci = fresh();
    await sql(`CREATE TABLE ${ci} (k VARCHAR(9) COLLATE utf8mb4_general_ci PRIMARY KEY)`);
    await sql(`INSERT INTO ${ci} SELECT CONCAT('k', seq) FROM seq_1_to_20000`);
    const ep2 = await openTable(ci);
    for (let i = 0; i < 5; i++) {
      for await (const batch of ep2.scanKeys({ batchRows: 100 })) {
        expect(batch[0]).toEqual(['k1']);
        break;
      }
    }
    expect(await ep2.count()).toBe(20000);
    for (let i = 0; i < 4; i++) {
      await ep2.close();
      await ep2.open();
    }
    const keys = await collect(ep2.scanKeys({ batchRows: 3000 }));
    expect(keys.length).toBe(20000);
    expect(keys.map((k) => k[0])).toEqual(
      keys.map((k) => k[0]).sort((a, b) => compareKeys([a!], [b!])),
    );
    await ep2.close();
  });
});
