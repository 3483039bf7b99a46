/**
 * The table commands as a user runs them: real CLI processes against the
 * machine's PostgreSQL and MariaDB and a SQLite file. Bad input gets a clear
 * error naming the problem and nothing is written.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_TABLE } from '../core/errors.js';
import { MYSQL_URL, PG_URL, databaseAvailable, uniqueTable } from '../test-support/databases.js';
import {
  assertBuilt,
  makeTempDir,
  parseJsonOutput,
  removeTempDirs,
  runCli,
} from '../test-support/cli.js';

const ok = (await databaseAvailable('postgres')) && (await databaseAvailable('mysql'));
const exit = (code: keyof typeof ERROR_TABLE): number => ERROR_TABLE[code].exit;

let work: string;
let db: string;
let pgc: pg.Client;
let my: mysql.Connection;
const pgTables: string[] = [];
const myTables: string[] = [];

function sqliteRuns(file: string, rows: number): void {
  const d = new Database(file);
  d.exec(`CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT, loss REAL, updated_at TIMESTAMP);
          CREATE TABLE nokey (a INT, b TEXT);`);
  const ins = d.prepare('INSERT INTO runs VALUES (?, ?, ?, ?)');
  d.transaction(() => {
    for (let i = 1; i <= rows; i++)
      ins.run(i, `run-${i}`, i / 8, `2026-01-01 00:00:${String(i % 60).padStart(2, '0')}`);
    d.prepare("INSERT INTO nokey VALUES (1, 'x'), (2, 'y')").run();
  })();
  d.close();
}

const pgUrl = (t: string): string => {
  pgTables.push(t);
  return `${PG_URL}?table=${t}`;
};

beforeAll(async () => {
  if (!ok) return;
  assertBuilt();
  work = await makeTempDir('tongbu-table-cli-');
  db = path.join(work, 'runs.db');
  sqliteRuns(db, 1000);
  pgc = new pg.Client({ connectionString: PG_URL });
  await pgc.connect();
  my = await mysql.createConnection(MYSQL_URL);
});

afterAll(async () => {
  if (!ok) return;
  for (const t of pgTables) await pgc.query(`DROP TABLE IF EXISTS "${t}"`);
  for (const t of myTables) await my.query(`DROP TABLE IF EXISTS \`${t}\``);
  await pgc.end();
  await my.end();
  await removeTempDirs();
});

describe.skipIf(!ok)('tongbu sync / verify on tables', () => {
  it('copies SQLite into PostgreSQL, verifies equal, then names the one row that differs', async () => {
    const dst = pgUrl(uniqueTable('cli_runs'));
    const state = path.join(work, 'state.db');
    const sync = await runCli(['sync', `sqlite:${db}?table=runs`, dst, '--state', state, '--json']);
    expect(sync.stderr).toBe('');
    expect(sync.code).toBe(0);
    expect(parseJsonOutput(sync.stdout)).toMatchObject({
      method: 'create',
      rows: { inserted: 1000 },
    });
    const t = pgTables[pgTables.length - 1]!;
    const { rows } = await pgc.query(`SELECT count(*)::int AS n, sum(loss) AS s FROM "${t}"`);
    expect(rows[0]).toEqual({ n: 1000, s: 62562.5 });
    const same = await runCli(['verify', `sqlite:${db}?table=runs`, dst]);
    expect(same.code).toBe(0);
    expect(same.stdout).toMatch(/verify: equal, 1000 rows/);
    await pgc.query(`UPDATE "${t}" SET name = 'tampered' WHERE id = 617`);
    const diff = await runCli(['verify', `sqlite:${db}?table=runs`, dst]);
    expect(diff.code).toBe(exit('DIFFERENT'));
    expect(diff.stdout).toContain('different 617\n');
    const fix = await runCli([
      'sync',
      `sqlite:${db}?table=runs`,
      dst,
      '--state',
      state,
      '--mode',
      'full',
      '--json',
    ]);
    expect(parseJsonOutput(fix.stdout)).toMatchObject({
      rows: { updated: 1, inserted: 0, deleted: 0 },
    });
    expect((await runCli(['verify', `sqlite:${db}?table=runs`, dst])).code).toBe(0);
  });

  it('a missing source table is named and nothing is created', async () => {
    const t = uniqueTable('cli_never');
    const r = await runCli(['sync', `sqlite:${db}?table=nope`, pgUrl(t)]);
    expect(r.code).toBe(exit('SOURCE_NOT_FOUND'));
    expect(r.stderr).toMatch(/table "nope" does not exist/);
    const { rows } = await pgc.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [t]);
    expect(rows[0]!.t).toBeNull();
  });

  it('a table without a primary key needs key=', async () => {
    const t = uniqueTable('cli_nokey');
    const r = await runCli(['sync', `sqlite:${db}?table=nokey`, pgUrl(t)]);
    expect(r.code).toBe(exit('BAD_ARGUMENT'));
    expect(r.stderr).toMatch(/nokey/);
    expect(r.stderr).toMatch(/key/);
    const withKey = await runCli([
      'sync',
      `sqlite:${db}?table=nokey&key=a`,
      pgUrl(t),
      '--state',
      path.join(work, 's2.db'),
    ]);
    expect(withKey.stderr).toBe('');
    expect(withKey.code).toBe(0);
  });

  it('incompatible schemas are refused naming the column, and nothing is written', async () => {
    const t = uniqueTable('cli_bad');
    myTables.push(t);
    await my.query(
      `CREATE TABLE \`${t}\` (id BIGINT PRIMARY KEY, name INT, loss DOUBLE, updated_at DATETIME(6))`,
    );
    const r = await runCli(['sync', `sqlite:${db}?table=runs`, `${MYSQL_URL}?table=${t}`]);
    expect(r.code).toBe(exit('SCHEMA_MISMATCH'));
    expect(r.stderr).toMatch(/column "name" is text/);
    const [rows] = await my.query(`SELECT count(*) AS n FROM \`${t}\``);
    expect((rows as { n: number }[])[0]!.n).toBe(0);
  });

  it('a refused connection and a wrong password are named, without the password', async () => {
    const refused = await runCli([
      'verify',
      `sqlite:${db}?table=runs`,
      'postgres://postgres@127.0.0.1:1/test?table=runs',
    ]);
    expect(refused.code).toBe(exit('CONNECTION_FAILED'));
    expect(refused.stderr).toMatch(/127\.0\.0\.1:1/);
    const user = uniqueTable('tb_user');
    await my.query(`CREATE USER '${user}'@'%' IDENTIFIED BY 'right-secret'`);
    await my.query(`CREATE USER '${user}'@'localhost' IDENTIFIED BY 'right-secret'`);
    try {
      const u = new URL(MYSQL_URL);
      const bad = `mysql://${user}:wrong-secret@${u.host}${u.pathname}?table=runs`;
      const r = await runCli(['verify', `sqlite:${db}?table=runs`, bad]);
      expect(r.code).toBe(exit('UNAUTHORIZED'));
      expect(r.stderr).toContain(user);
      expect(r.stderr).not.toContain('wrong-secret');
    } finally {
      await my.query(`DROP USER IF EXISTS '${user}'@'%'`);
      await my.query(`DROP USER IF EXISTS '${user}'@'localhost'`);
    }
  });

  it('a table snapshots into a directory as one file per row', async () => {
    const out = path.join(work, 'snap');
    const r = await runCli([
      'sync',
      `sqlite:${db}?table=runs`,
      out,
      '--state',
      path.join(work, 's3.db'),
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(fs.readdirSync(path.join(out, 'rows'))).toHaveLength(1000);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'rows', '42.json'), 'utf8'))).toEqual({
      id: '42',
      name: 'run-42',
      loss: '5.25',
      updated_at: '2026-01-01 00:00:42',
    });
  });
});
