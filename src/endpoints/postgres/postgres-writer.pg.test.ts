import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { databaseAvailable, PG_URL, tableUrl, uniqueTable } from '../../test-support/databases.js';
import type { Row } from '../table/canonical.js';
import type { TableSchema } from '../table/table-schema.js';
import { parseTableUrl } from '../table/table-url.js';
import { PostgresTable } from './postgres-table.js';
import { collect, failure } from '../../test-support/table-tests.js';

const ok = await databaseAvailable('postgres');

const SCHEMA: TableSchema = {
  key: ['id'],
  columns: [
    { name: 'id', type: 'int', nullable: false },
    { name: 'v', type: 'text', nullable: true },
    { name: 'w', type: 'int', nullable: true },
  ],
};

const base = (n: number): Row[] =>
  Array.from({ length: n }, (_x, i) => [i + 1, `v${i + 1}`, i + 1]);

describe.skipIf(!ok)('PostgresTable writes and errors', () => {
  const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
  const made: string[] = [];
  const schemaName = `tb_pg_schema_${process.pid}`;
  const fresh = (): string => {
    const t = uniqueTable('tb_pgw');
    made.push(t);
    return t;
  };
  const open = async (t: string, extra = ''): Promise<PostgresTable> => {
    const ep = new PostgresTable(parseTableUrl(tableUrl('postgres', t, extra)));
    await ep.open();
    return ep;
  };
  afterAll(async () => {
    for (const t of made) await admin.query(`DROP TABLE IF EXISTS "${t}"`);
    await admin.query(`DROP SCHEMA IF EXISTS "${schemaName}" CASCADE`);
    await admin.end();
  });

  for (const [what, ddl, extra] of [
    ['a primary key (ON CONFLICT)', 'id int PRIMARY KEY, v text, w int', ''],
    ['key= and no primary key (UPDATE + INSERT)', 'id int NOT NULL, v text, w int', '&key=id'],
  ] as const) {
    it(`upserts given columns and deletes by key on a table with ${what}`, async () => {
      const t = fresh();
      await admin.query(`CREATE TABLE "${t}" (${ddl})`);
      const ep = await open(t, extra);
      let w = await ep.beginWrite();
      await w.insert(SCHEMA.columns, base(10));
      await w.commit();
      w = await ep.beginWrite();
      const idv = SCHEMA.columns.slice(0, 2);
      await w.upsert(idv, [
        [2, 'two'],
        [11, 'eleven'],
      ]);
      await w.upsert(idv, [[12, null]]);
      await w.upsert(SCHEMA.columns, [[4, 'four', 44]]);
      await w.delete([[3], [99]]);
      await w.commit();
      const expected = base(10)
        .filter((r) => r[0] !== 3)
        .map((r) => (r[0] === 2 ? [2, 'two', 2] : r[0] === 4 ? [4, 'four', 44] : r))
        .concat([
          [11, 'eleven', null],
          [12, null, null],
        ]);
      expect(await collect(ep.scan())).toEqual(expected);
      await ep.close();
    });
  }

  it('bulk-loads a created table through one COPY and adds the key at commit', async () => {
    const t = fresh();
    const ep = await open(t);
    expect(ep.schema).toBeUndefined();
    const w = await ep.beginWrite({ create: SCHEMA });
    const rows = base(3000);
    for (let at = 0; at < 2000; at += 500) await w.insert(SCHEMA.columns, rows.slice(at, at + 500));
    await w.upsert(SCHEMA.columns, [[1, 'one', 1]]);
    await w.insert(SCHEMA.columns, rows.slice(2000));
    await w.delete([[2]]);
    await w.commit();
    expect(ep.schema?.key).toEqual(['id']);
    expect(ep.schema?.columns.map((c) => c.type)).toEqual(['int', 'text', 'int']);
    const got = await collect(ep.scan());
    expect(got.length).toBe(2999);
    expect(got[0]).toEqual([1, 'one', 1]);
    expect(got[1]).toEqual([3, 'v3', 3]);
    const pk = await admin.query(
      `SELECT 1 FROM pg_index WHERE indrelid = '"${t}"'::regclass AND indisprimary`,
    );
    expect(pk.rowCount).toBe(1);
    await ep.close();
  });

  it('round-trips a row of megabytes through COPY both ways', async () => {
    const t = fresh();
    const ep = await open(t);
    const schema: TableSchema = {
      key: ['id'],
      columns: [
        { name: 'id', type: 'int', nullable: false },
        { name: 'big', type: 'text', nullable: true },
        { name: 'data', type: 'blob', nullable: true },
      ],
    };
    const rows: Row[] = [
      [1, `${'x\t\\'.repeat(1 << 19)}末`, Buffer.alloc(1 << 20, 7)],
      [2, 'small', Buffer.from([1])],
    ];
    const w = await ep.beginWrite({ create: schema });
    await w.insert(schema.columns, rows);
    await w.commit();
    const got = await collect(ep.scan({ batchRows: 1 }));
    expect(got).toEqual(rows);
    await ep.close();
  });

  it('rolls back: a created table disappears, an open COPY leaves the table as it was', async () => {
    const t = fresh();
    const ep = await open(t);
    let w = await ep.beginWrite({ create: SCHEMA });
    await w.insert(SCHEMA.columns, base(100));
    await w.rollback();
    expect((await admin.query('SELECT to_regclass($1) AS r', [`"${t}"`])).rows[0]).toEqual({
      r: null,
    });
    await admin.query(`CREATE TABLE "${t}" (id int PRIMARY KEY, v text, w int)`);
    await ep.open();
    w = await ep.beginWrite();
    await w.insert(SCHEMA.columns, base(5));
    await w.commit();
    w = await ep.beginWrite();
    await w.delete([[1]]);
    await w.insert(SCHEMA.columns, [[50, 'x', 1]]);
    await w.rollback();
    expect(await collect(ep.scan())).toEqual(base(5));
    await ep.close();
  });

  it('fails a commit on a duplicate key and leaves the table unchanged', async () => {
    const t = fresh();
    const ep = await open(t);
    let w = await ep.beginWrite({ create: SCHEMA });
    await w.insert(SCHEMA.columns, base(5));
    await w.commit();
    w = await ep.beginWrite();
    await w.insert(SCHEMA.columns, [[6, 'six', 6]]);
    await w.insert(SCHEMA.columns, [[3, 'again', 3]]);
    expect((await failure(w.commit())).code).toBe('CONFLICT');
    expect(await collect(ep.scan())).toEqual(base(5));
    w = await ep.beginWrite();
    await w.insert(SCHEMA.columns, [[6, 'six', 6]]);
    await w.commit();
    expect(await ep.count()).toBe(6);
    await ep.close();
  });

  it('takes schema-qualified table names', async () => {
    await admin.query(`CREATE SCHEMA IF NOT EXISTS "${schemaName}"`);
    const ep = await open(`${schemaName}.runs`);
    const w = await ep.beginWrite({ create: SCHEMA });
    await w.insert(SCHEMA.columns, base(3));
    await w.commit();
    const again = await open(`${schemaName}.runs`);
    expect(again.table).toBe(`${schemaName}.runs`);
    expect(await collect(again.scan())).toEqual(base(3));
    await again.close();
    await ep.close();
  });

  it('names host and port when the server is unreachable, never the password', async () => {
    const ep = new PostgresTable(
      parseTableUrl('postgres://postgres:s3cretPW@127.0.0.1:1/test?table=x'),
    );
    const err = await failure(ep.open());
    expect(err.code).toBe('CONNECTION_FAILED');
    expect(err.message).toContain('127.0.0.1:1');
    expect(err.message).not.toContain('s3cretPW');
    expect(JSON.stringify(err)).not.toContain('s3cretPW');
    expect(ep.url).not.toContain('s3cretPW');
    await ep.close();
  });

  it('names a missing database and an unknown user', async () => {
    const url = new URL(PG_URL);
    url.pathname = '/tongbu_no_such_db';
    url.password = 'pw-secret-1';
    const noDb = new PostgresTable(parseTableUrl(`${url.href}?table=x`));
    const dbErr = await failure(noDb.open());
    expect(dbErr.code).toBe('NOT_FOUND');
    expect(dbErr.message).toContain('tongbu_no_such_db');
    expect(dbErr.message).not.toContain('pw-secret-1');
    await noDb.close();
    const user = new URL(PG_URL);
    user.username = 'tongbu_no_such_user';
    user.password = 'pw-secret-2';
    const noUser = new PostgresTable(parseTableUrl(`${user.href}?table=x`));
    const userErr = await failure(noUser.open());
    expect(userErr.code).toBe('UNAUTHORIZED');
    expect(userErr.message).toContain('tongbu_no_such_user');
    expect(userErr.message).not.toContain('pw-secret-2');
    await noUser.close();
  });

  it('reports a missing table, a table without key, and a bad key= column', async () => {
    const missing = await open(uniqueTable('tb_pg_missing'));
    expect(missing.schema).toBeUndefined();
    expect((await failure(collect(missing.scan()))).code).toBe('SOURCE_NOT_FOUND');
    expect((await failure(missing.beginWrite())).code).toBe('NOT_FOUND');
    await missing.close();
    const t = fresh();
    await admin.query(`CREATE TABLE "${t}" (id int, v text)`);
    const noKey = new PostgresTable(parseTableUrl(tableUrl('postgres', t)));
    const keyErr = await failure(noKey.open());
    expect(keyErr.code).toBe('BAD_ARGUMENT');
    expect(keyErr.message).toContain(t);
    await noKey.close();
    const badKey = new PostgresTable(parseTableUrl(tableUrl('postgres', t, '&key=nosuch')));
    const badErr = await failure(badKey.open());
    expect(badErr.code).toBe('BAD_ARGUMENT');
    expect(badErr.message).toContain('nosuch');
    await badKey.close();
    const byKey = await open(t, '&key=id');
    expect(byKey.schema?.key).toEqual(['id']);
    await byKey.close();
  });
});
