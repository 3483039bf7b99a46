import { afterAll, describe, expect, it } from 'vitest';
import { databaseAvailable, tableUrl, uniqueTable } from '../../test-support/databases.js';
import { parseTableUrl } from '../table/table-url.js';
import { MysqlTable } from './mysql-table.js';
import { collect, dropTables, failure, openTable, sql } from './mysql-test-suite.js';

const ok = await databaseAvailable('mysql');
const made: string[] = [];
const fresh = (): string => {
  const t = uniqueTable('tb_myerr');
  made.push(t);
  return t;
};
afterAll(async () => {
  if (ok) await dropTables(made);
});

describe.skipIf(!ok)('MysqlTable errors', () => {
  it('refuses zero dates, naming the column', async () => {
    const t = fresh();
    await sql(
      `CREATE TABLE ${t} (id INT PRIMARY KEY, d DATE)`,
      `SET SESSION sql_mode = ''`,
      `INSERT INTO ${t} VALUES (1, '2020-01-01'), (2, '0000-00-00')`,
    );
    const ep = await openTable(t);
    const err = await failure(collect(ep.scan()));
    expect([err.code, err.message.includes('"d"')]).toEqual(['BAD_ARGUMENT', true]);
    const cerr = await failure(ep.checksums(ep.schema!.columns, [{}]));
    expect([cerr.code, cerr.message.includes('"d"')]).toEqual(['BAD_ARGUMENT', true]);
    await ep.close();
  });

  it('names the problem when it cannot connect or open', async () => {
    const refused = new MysqlTable(parseTableUrl('mysql://root:s3cret@127.0.0.1:1/test?table=x'));
    const e1 = await failure(refused.open());
    expect([e1.code, e1.message.includes('127.0.0.1:1')]).toEqual(['CONNECTION_FAILED', true]);
    expect(JSON.stringify(e1.toJSON())).not.toContain('s3cret');

    const url = new URL(tableUrl('mysql', 'x'));
    url.password = 'wr0ngpass';
    const denied = new MysqlTable(parseTableUrl(url.toString()));
    const e2 = await failure(denied.open());
    expect([e2.code, e2.message.includes(`"${decodeURIComponent(url.username)}"`)]).toEqual([
      'UNAUTHORIZED',
      true,
    ]);
    expect(`${e2.message} ${JSON.stringify(e2.toJSON())} ${denied.url}`).not.toContain('wr0ngpass');

    url.password = '';
    url.pathname = '/no_such_db_tongbu';
    const e3 = await failure(new MysqlTable(parseTableUrl(url.toString())).open());
    expect([e3.code, e3.message.includes('no_such_db_tongbu')]).toEqual(['NOT_FOUND', true]);

    const t = fresh();
    await sql(`CREATE TABLE ${t} (a INT, b TEXT)`, `INSERT INTO ${t} VALUES (2, 'x'), (1, 'y')`);
    const e4 = await failure(openTable(t));
    expect([e4.code, e4.message.includes(t)]).toEqual(['BAD_ARGUMENT', true]);
    expect((await failure(openTable(t, '&key=nope'))).code).toBe('BAD_ARGUMENT');
    const keyed = await openTable(t, '&key=a');
    expect(await collect(keyed.scan())).toEqual([
      [1, 'y'],
      [2, 'x'],
    ]);
    await keyed.close();
  });
});
