import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { TableSchema } from '../table/table-schema.js';
import { ALL, collect, EDGE_ROWS, failure, make, opened, tempFiles } from './sqlite-test-suite.js';

const { fresh: freshFile } = tempFiles('sqlite-writes');

describe('SqliteTable writes', () => {
  it('upserts given columns, deletes by key, and commits atomically', async () => {
    const file = freshFile();
    await make(file, ALL, EDGE_ROWS);
    const ep = await opened(file);
    const w = await ep.beginWrite();
    const some = [ALL.columns[0]!, ALL.columns[4]!];
    await w.upsert(some, [
      [0n, 'changed'],
      [100n, 'new'],
    ]);
    await w.delete([[-1n], [12345n]]);
    // Not visible before commit, on this endpoint or another.
    expect(await ep.count()).toBe(EDGE_ROWS.length);
    expect((await ep.fetch([[0n]]))[0]![4]).toBe('naïve 😀 \u0000 nul');
    await w.commit();
    const rows = await collect(ep.scan());
    expect(rows.map((r) => r[0])).toEqual(
      [-(2n ** 63n), 0n, 2n ** 53n + 1n, 2n ** 63n - 1n, 42n, 43n, 100n].sort((x, y) =>
        x < y ? -1 : 1,
      ),
    );
    const zero = rows.find((r) => r[0] === 0n)!;
    expect(zero[4]).toBe('changed');
    expect(zero[3]).toBe(Infinity); // columns not given stay
    expect(rows.find((r) => r[0] === 100n)!.slice(1, 4)).toEqual([null, null, null]);
    await ep.close();
  });

  it('rollback leaves the table as it was, and a rolled-back create leaves no file', async () => {
    const file = freshFile();
    await make(file, ALL, EDGE_ROWS);
    const ep = await opened(file);
    const w = await ep.beginWrite();
    await w.delete([[0n]]);
    await w.insert(ALL.columns, [[7n, ...Array<null>(11).fill(null)]]);
    await w.rollback();
    expect(await ep.count()).toBe(EDGE_ROWS.length);
    await ep.close();

    const fresh = freshFile();
    const ep2 = await opened(fresh);
    const w2 = await ep2.beginWrite({ create: ALL });
    await w2.insert(ALL.columns, EDGE_ROWS);
    await w2.rollback();
    expect(existsSync(fresh)).toBe(false);
    expect(ep2.schema).toBeUndefined();
    await ep2.close();

    // A failing insert (duplicate key) rolls back what the transaction did.
    const ep3 = await opened(file);
    const w3 = await ep3.beginWrite();
    await w3.delete([[43n]]);
    expect((await failure(w3.insert(ALL.columns, [EDGE_ROWS[1]!]))).code).toBe('BAD_ARGUMENT');
    await w3.rollback();
    expect(await ep3.count()).toBe(EDGE_ROWS.length);
    await ep3.close();
  });

  it('writes widened values into wider column types', async () => {
    const file = freshFile();
    const dest: TableSchema = {
      key: ['id'],
      columns: [
        { name: 'id', type: 'bigint', nullable: false },
        { name: 'flag', type: 'int', nullable: true },
        { name: 'amount', type: 'numeric', nullable: true },
        { name: 'at', type: 'timestamp', nullable: true },
        { name: 'day', type: 'timestamp', nullable: true },
        { name: 'doc', type: 'json', nullable: true },
        { name: 'x', type: 'float', nullable: true },
      ],
    };
    await make(file, dest, []);
    const ep = await opened(file);
    const w = await ep.beginWrite();
    await w.insert(
      [
        { name: 'id', type: 'int', nullable: false },
        { name: 'flag', type: 'bool', nullable: true },
        { name: 'amount', type: 'bigint', nullable: true },
        { name: 'at', type: 'timestamptz', nullable: true },
        { name: 'day', type: 'date', nullable: true },
        { name: 'doc', type: 'text', nullable: true },
        { name: 'x', type: 'int', nullable: true },
      ],
      [[1, true, 2n ** 62n, '2026-01-02 03:04:05.5+00', '2026-01-02', '{ "b": 1, "a": 2 }', 3]],
    );
    await w.commit();
    expect(await collect(ep.scan())).toEqual([
      [
        1n,
        1,
        String(2n ** 62n),
        '2026-01-02 03:04:05.5',
        '2026-01-02 00:00:00',
        '{"a":2,"b":1}',
        3,
      ],
    ]);
    await ep.close();
  });

  it('syncs a key= table without a unique index (upsert by UPDATE then INSERT)', async () => {
    const file = freshFile();
    const db = new Database(file);
    db.exec("CREATE TABLE nokey (a TEXT, b INT); INSERT INTO nokey VALUES ('x', 1), ('y', 2);");
    db.close();
    const ep = await opened(file, 'nokey', '&key=a');
    expect(ep.schema?.key).toEqual(['a']);
    const w = await ep.beginWrite();
    await w.upsert(ep.schema!.columns, [
      ['y', 20],
      ['z', 30],
    ]);
    await w.upsert([ep.schema!.columns[0]!], [['w']]);
    await w.commit();
    expect(await collect(ep.scan())).toEqual([
      ['w', null],
      ['x', 1],
      ['y', 20],
      ['z', 30],
    ]);
    const w2 = await ep.beginWrite();
    await w2.insert(ep.schema!.columns, [['x', 2]]);
    await w2.commit();
    expect((await failure(collect(ep.scan()))).message).toContain('(x) repeats');
    await ep.close();
  });
  it('copies between two tables of one file while the scan and the write interleave', async () => {
    const file = freshFile();
    const rows = Array.from({ length: 20_000 }, (_, i) => [BigInt(i), ...EDGE_ROWS[2]!.slice(1)]);
    await make(file, ALL, rows, 'a');
    const a = await opened(file, 'a');
    const b = await opened(file, 'b');
    const w = await b.beginWrite({ create: ALL });
    for await (const batch of a.scan({ batchRows: 1000 })) {
      await w.insert(ALL.columns, batch);
      expect(await a.count()).toBe(rows.length); // reads go on during the write
    }
    expect(b.schema).toBeUndefined(); // not created until commit
    await w.commit();
    expect(await b.count()).toBe(rows.length);
    expect(await b.checksums(ALL.columns, [{}])).toEqual(await a.checksums(ALL.columns, [{}]));
    await Promise.all([a.close(), b.close()]);
  });
});
