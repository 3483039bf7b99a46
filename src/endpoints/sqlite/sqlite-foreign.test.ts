import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { checksumRows } from '../table/canonical.js';
import { collect, failure, opened, tempFiles } from './sqlite-test-suite.js';

const { dir, fresh: freshFile } = tempFiles('sqlite-foreign');

describe('SqliteTable on tables other tools made', () => {
  it('reads what other tools stored, converting to canonical values', async () => {
    const file = freshFile();
    const db = new Database(file);
    db.exec(`CREATE TABLE runs (id INTEGER PRIMARY KEY, at DATETIME, atz TIMESTAMPTZ, day DATE, ok BOOLEAN,
      amount NUMERIC(10,2), price DECIMAL, score FLOAT, uid UUID, doc JSON, label, n BIGINT)`);
    const ins = db.prepare('INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)');
    ins.run(
      1,
      '2026-01-02T03:04:05Z',
      '2026-01-02T05:04:05+02:00',
      '2026-01-02',
      'true',
      1.5,
      2,
      '7',
      '{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}',
      '{ "b" : [1, 2], "a": {} }',
      12,
      '77',
    );
    ins.run(
      2,
      1767322800,
      1767322800.25,
      '2026-01-02T00:00:00Z',
      'f',
      '3.10',
      0.1,
      1,
      Buffer.from('a0eebc999c0b4ef8bb6d6bb9bd380a11', 'hex'),
      5,
      'x',
      8,
    );
    ins.run(
      3,
      '2026-01-02 03:04',
      '2026-01-02 03:04:05.1234567',
      '2026-01-02 00:00:00',
      0,
      '1e2',
      -0.5,
      'NaN',
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      '"s"',
      1.5,
      null,
    );
    db.close();
    const ep = await opened(file, 'runs');
    expect(ep.schema?.columns.map((c) => c.type)).toEqual([
      'bigint',
      'timestamp',
      'timestamptz',
      'date',
      'bool',
      'numeric',
      'numeric',
      'float',
      'uuid',
      'json',
      'text',
      'bigint',
    ]);
    const rows = await collect(ep.scan());
    const uid = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11';
    expect(rows[0]).toEqual([
      1n,
      '2026-01-02 03:04:05',
      '2026-01-02 03:04:05+00',
      '2026-01-02',
      true,
      '1.5',
      '2',
      7,
      uid,
      '{"a":{},"b":[1,2]}',
      '12',
      77n,
    ]);
    expect(rows[1]).toEqual([
      2n,
      '2026-01-02 03:00:00',
      '2026-01-02 03:00:00.25+00',
      '2026-01-02',
      false,
      '3.1',
      '0.1',
      1,
      uid,
      '5',
      'x',
      8n,
    ]);
    expect(rows[2]!.slice(0, 8)).toEqual([
      3n,
      '2026-01-02 03:04:00',
      '2026-01-02 03:04:05.123456+00',
      '2026-01-02',
      false,
      '100',
      '-0.5',
      NaN,
    ]);
    expect(rows[2]!.slice(8)).toEqual([uid, '"s"', '1.5', null]);
    expect(await ep.checksums(ep.schema!.columns, [{}])).toEqual([
      checksumRows(ep.schema!.columns, rows),
    ]);
  });

  it('names the column and key of a value it cannot read', async () => {
    const file = freshFile();
    const db = new Database(file);
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, at DATETIME, small INT)');
    db.prepare('INSERT INTO t VALUES (?, ?, ?)').run(1, '2026-01-01 00:00:00', 1);
    db.prepare('INSERT INTO t VALUES (?, ?, ?)').run(2, 'yesterday', 1);
    db.prepare('INSERT INTO t VALUES (?, ?, ?)').run(3, null, 2 ** 40);
    db.close();
    const ep = await opened(file);
    const e = await failure(collect(ep.scan()));
    expect(e.code).toBe('BAD_ARGUMENT');
    expect(e.message).toContain('column "at"');
    expect(e.message).toContain('key (2)');
    expect(e.message).toContain('yesterday');
    const e2 = await failure(ep.fetch([[3n]]));
    expect(e2.message).toMatch(/column "small".*key \(3\).*int/);
    await ep.close();
  });

  it('refuses what is not a table it can sync', async () => {
    const junk = join(dir, 'junk.db');
    writeFileSync(
      junk,
      'this is not a database, just some text that is long enough to have a header.'.repeat(20),
    );
    const e = await failure(opened(junk));
    expect(e.code).toBe('BAD_ARGUMENT');
    expect(e.message).toContain(junk);

    const file = freshFile();
    const db = new Database(file);
    db.exec("CREATE TABLE nokey (a TEXT, b INT); INSERT INTO nokey VALUES ('x', 1), ('y', 2);");
    db.close();
    const missing = await opened(file, 'other');
    expect(missing.schema).toBeUndefined();
    await missing.close();
    const noKey = await failure(opened(file, 'nokey'));
    expect(noKey.code).toBe('BAD_ARGUMENT');
    expect(noKey.message).toContain('"nokey"');
    expect((await failure(opened(file, 'nokey', '&key=zz'))).code).toBe('BAD_ARGUMENT');
    expect((await failure(opened(dir, 'nokey'))).code).toBe('BAD_ARGUMENT');
  });

  it('reads views with key=, and leaves generated columns out', async () => {
    const file = freshFile();
    const db = new Database(file);
    db.exec(`CREATE TABLE Base (id INTEGER PRIMARY KEY, name TEXT, twice INT GENERATED ALWAYS AS (id * 2) VIRTUAL);
      INSERT INTO Base (id, name) VALUES (3, 'c'), (1, 'a'), (2, 'b');
      CREATE VIEW named AS SELECT name, id FROM Base;`);
    db.close();
    const base = await opened(file, 'base');
    expect(base.schema?.columns.map((c) => c.name)).toEqual(['id', 'name']);
    expect(await collect(base.scan())).toEqual([
      [1n, 'a'],
      [2n, 'b'],
      [3n, 'c'],
    ]);
    await base.close();
    expect((await failure(opened(file, 'named'))).code).toBe('BAD_ARGUMENT');
    const view = await opened(file, 'named', '&key=name');
    expect(await collect(view.scan({ batchRows: 1 }))).toEqual([
      ['a', 1n],
      ['b', 2n],
      ['c', 3n],
    ]);
    expect(await view.splitPoints(3)).toEqual([['b'], ['c']]);
    await view.close();
  });
});
