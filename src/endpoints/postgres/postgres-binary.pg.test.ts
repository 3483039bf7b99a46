import { afterAll, describe, expect, it } from 'vitest';
import { databaseAvailable, tableUrl } from '../../test-support/databases.js';
import type { Row } from '../table/canonical.js';
import type { Column, TableSchema } from '../table/table-schema.js';
import { parseTableUrl } from '../table/table-url.js';
import { readShape } from './postgres-catalog.js';
import { CopyIn } from './postgres-copy.js';
import { connectClient, connectionFor } from './postgres-session.js';
import { collect, failure } from '../../test-support/table-tests.js';
import { pgTestTables } from './postgres-test-suite.js';

const ok = await databaseAvailable('postgres');

/** One column of every canonical type; `create` maps them to their native types. */
const EVERY: TableSchema = {
  key: ['id'],
  columns: [
    { name: 'id', type: 'int', nullable: false },
    { name: 'i', type: 'int', nullable: true },
    { name: 'big', type: 'bigint', nullable: true },
    { name: 'n', type: 'numeric', nullable: true },
    { name: 'f', type: 'float', nullable: true },
    { name: 't', type: 'text', nullable: true },
    { name: 'b', type: 'blob', nullable: true },
    { name: 'ok', type: 'bool', nullable: true },
    { name: 'ts', type: 'timestamp', nullable: true },
    { name: 'tz', type: 'timestamptz', nullable: true },
    { name: 'd', type: 'date', nullable: true },
    { name: 'j', type: 'json', nullable: true },
    { name: 'u', type: 'uuid', nullable: true },
  ],
};

const BIG_TEXT = `${'ab\tc\n\\é😀'.repeat(1 << 17)}`;

/** Edge values per column of EVERY, one row each, plus a row of NULLs. */
function everyRows(): Row[] {
  const ints = [0, -1, 2147483647, -2147483648];
  const bigs = [0n, -1n, 9223372036854775807n, -9223372036854775808n, 9007199254740993n];
  const numerics = [
    '0',
    '-0.0001',
    '12345678901234567890.123456789',
    `0.${'0'.repeat(500)}1`,
    `-${'9'.repeat(1000)}.${'1'.repeat(1000)}`,
    `1${'0'.repeat(4000)}`,
    `${'7'.repeat(13_000)}.${'3'.repeat(3000)}`,
    '10000',
    '0.5',
  ];
  const floats = [0, -0, 0.1, -1.5e300, 5e-324, Infinity, -Infinity, NaN, 2 ** 60];
  const texts = ['', 'tab\there\nnewline\\back\r', '😀 emoji ü', 'quote \' " ', BIG_TEXT];
  const blobs = [Buffer.alloc(0), Buffer.from(Array.from({ length: 256 }, (_x, i) => i))];
  const stamps = [
    '0001-01-01 00:00:00',
    '1999-12-31 23:59:59.999999',
    '2000-01-01 00:00:00',
    '9999-12-31 23:59:59.999999',
    '1969-12-31 23:59:59.5',
    '1600-02-29 12:34:56.000001',
    '2024-02-29 00:00:00.12',
  ];
  const dates = [
    '0001-01-01',
    '1999-12-31',
    '2000-01-01',
    '1582-10-10',
    '1900-03-01',
    '9999-12-31',
  ];
  const jsons = ['{"a":[1,2.5,{"b":null}],"z":"é\\n"}', '"x"', '[]', 'true', '{}'];
  const uuids = ['00000000-0000-0000-0000-000000000000', 'ffffffff-0123-4567-89ab-cdefabcdef01'];
  const n = Math.max(
    ints.length,
    bigs.length,
    numerics.length,
    floats.length,
    texts.length,
    stamps.length,
    dates.length,
  );
  const rows: Row[] = [];
  for (let k = 0; k < n; k++) {
    const at = <T>(xs: readonly T[]): T => xs[k % xs.length]!;
    rows.push([
      k + 1,
      at(ints),
      at(bigs),
      at(numerics),
      at(floats),
      at(texts),
      at(blobs),
      k % 2 === 0,
      at(stamps),
      `${at(stamps)}+00`,
      at(dates),
      at(jsons),
      at(uuids),
    ]);
  }
  rows.push([n + 1, ...EVERY.columns.slice(1).map(() => null)]);
  return rows;
}

describe.skipIf(!ok)('PostgreSQL binary COPY', () => {
  const { admin, made, fresh, open } = pgTestTables('tb_pgbin');
  const exists = async (t: string): Promise<boolean> =>
    (await admin.query<{ r: string | null }>('SELECT to_regclass($1) AS r', [`"${t}"`])).rows[0]!
      .r !== null;
  afterAll(async () => {
    for (const t of made) await admin.query(`DROP TABLE IF EXISTS "${t}"`);
    await admin.query('DROP TYPE IF EXISTS tb_pgbin_mood');
    await admin.query('DROP DOMAIN IF EXISTS tb_pgbin_pos');
    await admin.end();
  });

  it('round-trips every canonical type exactly, into a created table and an existing one', async () => {
    const rows = everyRows();
    const t = fresh();
    const ep = await open(t);
    let w = await ep.beginWrite({ create: EVERY });
    await w.insert(EVERY.columns, rows.slice(0, 3));
    await w.insert(EVERY.columns, rows.slice(3));
    await w.commit();
    expect(await collect(ep.scan())).toEqual(rows);
    // The server's own text of a few values: what the binary fields meant to it.
    const text = await admin.query(
      `SELECT id, n::text, ts::text, tz::text, d::text, f::text FROM "${t}" WHERE id <= 3 ORDER BY id`,
    );
    expect(text.rows.map((r: Record<string, unknown>) => [r['n'], r['ts'], r['d']])).toEqual([
      ['0', '0001-01-01 00:00:00', '0001-01-01'],
      ['-0.0001', '1999-12-31 23:59:59.999999', '1999-12-31'],
      ['12345678901234567890.123456789', '2000-01-01 00:00:00', '2000-01-01'],
    ]);
    // Inserts into the now existing table (no FREEZE), and upserts through a temp table.
    await ep.open();
    w = await ep.beginWrite();
    await w.insert(
      EVERY.columns,
      rows.map((r) => [Number(r[0]) + 1000, ...r.slice(1)]),
    );
    await w.upsert(EVERY.columns, [rows[2]!.map((v, i) => (i === 0 ? 1 : v))]);
    await w.commit();
    const got = await collect(ep.scan());
    expect(got.length).toBe(rows.length * 2);
    expect(got[0]).toEqual(rows[2]!.map((v, i) => (i === 0 ? 1 : v)));
    expect(got.slice(rows.length)).toEqual(rows.map((r) => [Number(r[0]) + 1000, ...r.slice(1)]));
    await ep.close();
  });

  it('writes by the native type of an existing table: int2, real, varchar, char, json, numeric(p,s), domains', async () => {
    const t = fresh();
    await admin.query('DROP DOMAIN IF EXISTS tb_pgbin_pos');
    await admin.query('CREATE DOMAIN tb_pgbin_pos AS int CHECK (VALUE > 0)');
    await admin.query(
      `CREATE TABLE "${t}" (id bigint PRIMARY KEY, s smallint, r real, v varchar(5), c char(4),
        j json, n numeric(8,2), p tb_pgbin_pos, tz timestamptz(3), big bigint)`,
    );
    const ep = await open(t);
    const cols = ep.schema!.columns;
    const w = await ep.beginWrite();
    await w.insert(cols, [
      [
        1n,
        -32768,
        0.1,
        'héllo',
        'ab',
        '{"b":1,"a":[true]}',
        '123456.785',
        7,
        '2020-01-01 00:00:00.1234+00',
        5,
      ],
      [2n, 32767, -3.5, '', '', 'null', '-0.001', 1, '1900-01-01 23:59:59+00', true],
      [3n, null, null, null, null, null, null, null, null, null],
    ]);
    await w.commit();
    expect(await collect(ep.scan())).toEqual([
      [
        1n,
        -32768,
        0.1,
        'héllo',
        'ab',
        '{"a":[true],"b":1}',
        '123456.79',
        7,
        '2020-01-01 00:00:00.123+00',
        5n,
      ],
      [2n, 32767, -3.5, '', '', 'null', '0', 1, '1900-01-01 23:59:59+00', 1n],
      [3n, null, null, null, null, null, null, null, null, null],
    ]);
    const raw = await admin.query(
      `SELECT r::float8 AS r, c, octet_length(c) AS len FROM "${t}" WHERE id = 1`,
    );
    expect(raw.rows[0]).toEqual({ r: Math.fround(0.1), c: 'ab  ', len: 4 });
    // The server still checks what it checked: the domain, the varchar length.
    for (const bad of [
      [4n, 1, 1, 'x', 'x', '1', '1', 0, null, null],
      [4n, 1, 1, 'toolong', 'x', '1', '1', 1, null, null],
      [4n, 1, 1, 'x', 'x', '1', '1234567.1', 1, null, null],
      [4n, 1, 1, 'x', 'x', '{bad json', '1', 1, null, null],
    ] as Row[]) {
      const w2 = await ep.beginWrite();
      await w2.insert(cols, [bad]);
      expect((await failure(w2.commit())).code).toBe('BAD_ARGUMENT');
    }
    expect(await ep.count()).toBe(3);
    await ep.close();
  });

  it('refuses an out-of-range int naming the column, and writes nothing', async () => {
    const t = fresh();
    const ep = await open(t);
    const schema: TableSchema = {
      key: ['id'],
      columns: [
        { name: 'id', type: 'int', nullable: false },
        { name: 'steps', type: 'int', nullable: true },
      ],
    };
    const good: Row[] = Array.from({ length: 5000 }, (_x, i) => [i + 1, i]);
    let w = await ep.beginWrite({ create: schema });
    await w.insert(schema.columns, good);
    let err = await failure(w.insert(schema.columns, [[5001, 2 ** 31]]));
    expect(err.code).toBe('BAD_ARGUMENT');
    expect(err.message).toContain('"steps"');
    expect(err.message).toContain('out of range');
    await w.rollback();
    expect(await exists(t)).toBe(false);

    await admin.query(`CREATE TABLE "${t}" (id int PRIMARY KEY, steps smallint)`);
    await ep.open();
    w = await ep.beginWrite();
    await w.insert(schema.columns, [[1, 1]]);
    await w.commit();
    w = await ep.beginWrite();
    await w.insert(schema.columns, [[2, 2]]);
    err = await failure(
      w.insert(schema.columns, [
        [3, 3],
        [4, 40_000],
        [5, 5],
      ]),
    );
    expect(err.code).toBe('BAD_ARGUMENT');
    expect(err.message).toContain('"steps"');
    expect((await failure(w.commit())).code).toBe('BAD_ARGUMENT');
    w = await ep.beginWrite();
    err = await failure(w.upsert(schema.columns, [[6, -40_000]]));
    expect(err.message).toContain('"steps"');
    await w.rollback();
    expect(await collect(ep.scan())).toEqual([[1, 1]]);
    await ep.close();
  });

  it('refuses numeric NaN and Infinity', async () => {
    const t = fresh();
    const ep = await open(t);
    const schema: TableSchema = {
      key: ['id'],
      columns: [
        { name: 'id', type: 'int', nullable: false },
        { name: 'amount', type: 'numeric', nullable: true },
      ],
    };
    for (const v of ['NaN', 'Infinity', NaN]) {
      const w = await ep.beginWrite({ create: schema });
      const err = await failure(w.insert(schema.columns, [[1, v]]));
      expect(err.code).toBe('BAD_ARGUMENT');
      expect(err.message).toContain('"amount"');
      await w.rollback();
    }
    expect(await exists(t)).toBe(false);
    await ep.close();
  });

  it('picks binary COPY when every column has a binary form, text COPY otherwise', async () => {
    const t = fresh();
    await admin.query('DROP TYPE IF EXISTS tb_pgbin_mood');
    await admin.query(`CREATE TYPE tb_pgbin_mood AS ENUM ('sad', 'ok')`);
    await admin.query(
      `CREATE TABLE "${t}" (id int PRIMARY KEY, v text, m tb_pgbin_mood, a int[], iv interval)`,
    );
    const conn = connectionFor(parseTableUrl(tableUrl('postgres', t)));
    const client = await connectClient(conn);
    try {
      const shape = (await readShape(client, conn, t, undefined))!;
      const [id, v, m, a, iv] = shape.columns;
      await client.query('BEGIN');
      const binary = new CopyIn(client, `"${t}"`, [id!, v!], 'b');
      expect(binary.binary).toBe(true);
      await binary.write([id!, v!], [[1, 'one']]);
      await binary.end();
      const text = new CopyIn(client, `"${t}"`, [id!, m!, a!, iv!], 't');
      expect(text.binary).toBe(false);
      await text.write([id!, m!, a!, iv!], [[2, 'ok', '{1,2}', '1 day']]);
      await text.end();
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    const ep = await open(t);
    expect(await collect(ep.scan())).toEqual([
      [1, 'one', null, null, null],
      [2, null, 'ok', '{1,2}', '1 day'],
    ]);
    // Through the writer: the enum column sends the whole stream as text.
    const w = await ep.beginWrite();
    await w.insert(ep.schema!.columns, [[3, 'three', 'sad', '{}', '00:00:01']]);
    await w.commit();
    expect((await ep.fetch([[3]]))[0]).toEqual([3, 'three', 'sad', '{}', '00:00:01']);
    await ep.close();
  });

  it('streams many rows across buffers', async () => {
    const t = fresh();
    const ep = await open(t);
    const schema: TableSchema = {
      key: ['id'],
      columns: [
        { name: 'id', type: 'bigint', nullable: false },
        { name: 'name', type: 'text', nullable: true },
        { name: 'score', type: 'numeric', nullable: true, precision: 12, scale: 4 },
        { name: 'at', type: 'timestamptz', nullable: true },
      ] satisfies Column[],
    };
    const rows: Row[] = Array.from({ length: 60_000 }, (_x, i) => [
      BigInt(i),
      `name-${i}-${'x'.repeat(i % 50)}`,
      `${i % 1000}.${String(i % 10_000).padStart(4, '0')}`.replace(/\.?0+$/, '') || '0',
      `2023-01-01 00:00:${String(i % 60).padStart(2, '0')}.${String(i % 999_999).padStart(6, '0')}`.replace(
        /\.?0+$/,
        '',
      ) + '+00',
    ]);
    const w = await ep.beginWrite({ create: schema });
    for (let at = 0; at < rows.length; at += 7000)
      await w.insert(schema.columns, rows.slice(at, at + 7000));
    await w.commit();
    const got = await collect(ep.scan());
    expect(got.length).toBe(rows.length);
    expect(got).toEqual(rows);
    await ep.close();
  });
});
