import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { checksumRows, compareKeys, type KeyTuple, type Row } from '../table/canonical.js';
import { normalizeRows } from '../table/table-endpoint-suite.js';
import type { TableSchema } from '../table/table-schema.js';
import {
  ALL,
  collect,
  EDGE_CANONICAL,
  EDGE_ROWS,
  failure,
  make,
  opened,
  tempFiles,
} from './sqlite-test-suite.js';

const { fresh: freshFile } = tempFiles('sqlite-table');

describe('SqliteTable reads', () => {
  it('opens a missing file without creating it, and creates it on write', async () => {
    const file = freshFile();
    const ep = await opened(file);
    expect(ep.schema).toBeUndefined();
    expect(existsSync(file)).toBe(false);
    expect((await failure(ep.beginWrite())).code).toBe('NOT_FOUND');
    expect((await failure(ep.count())).code).toBe('SOURCE_NOT_FOUND');
    const w = await ep.beginWrite({ create: ALL });
    await w.insert(ALL.columns, EDGE_ROWS);
    await w.commit();
    expect(existsSync(file)).toBe(true);
    const db = new Database(file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
    expect(ep.schema?.key).toEqual(['id']);
    expect(await ep.count()).toBe(EDGE_ROWS.length);
    await ep.close();
  });

  it('round-trips every type exactly, NULL apart from empty', async () => {
    const file = freshFile();
    await make(file, ALL, EDGE_ROWS);
    const ep = await opened(file);
    expect(ep.schema?.columns.map((c) => [c.name, c.type, c.nullable])).toEqual(
      ALL.columns.map((c) => [c.name, c.type, c.nullable]),
    );
    expect(ep.schema?.columns[2]).toMatchObject({
      precision: 40,
      scale: 20,
      nativeType: 'DECIMAL_TEXT(40,20)',
    });
    const rows = await collect(ep.scan({ batchRows: 2 }));
    expect(normalizeRows(rows)).toEqual(normalizeRows(EDGE_CANONICAL));
    expect(rows[5]![0]).toBe(2n ** 53n + 1n);
    expect(typeof rows[5]![1]).toBe('number');
    await ep.close();
    const db = new Database(file, { readonly: true });
    expect(db.prepare('SELECT typeof(n) FROM t WHERE id = 0').pluck().get()).toBe('text');
    db.close();
  });

  it('keeps NaN (stored as the text NaN); -0 becomes 0 (SQLite stores it as integer 0)', async () => {
    const file = freshFile();
    const schema: TableSchema = {
      key: ['id'],
      columns: [
        { name: 'id', type: 'int', nullable: false },
        { name: 'f', type: 'float', nullable: true },
      ],
    };
    await make(file, schema, [
      [1, NaN],
      [2, -0],
    ]);
    const ep = await opened(file);
    const rows = await collect(ep.scan());
    expect(rows[0]![1]).toBeNaN();
    expect(Object.is(rows[1]![1], 0)).toBe(true);
    await ep.close();
  });

  it('checksums equal checksumRows over ranges and column subsets', async () => {
    const file = freshFile();
    await make(file, ALL, EDGE_ROWS);
    const ep = await opened(file);
    const ranges = [
      {},
      { from: [0n] },
      { to: [0n] },
      { from: [-1n], to: [43n] },
      { from: [5n], to: [6n] },
    ];
    const inRange = (r: Row, range: { from?: KeyTuple; to?: KeyTuple }): boolean =>
      (range.from === undefined || compareKeys([r[0]!], range.from) >= 0) &&
      (range.to === undefined || compareKeys([r[0]!], range.to) < 0);
    expect(await ep.checksums(ALL.columns, ranges)).toEqual(
      ranges.map((range) =>
        checksumRows(
          ALL.columns,
          EDGE_CANONICAL.filter((r) => inRange(r, range)),
        ),
      ),
    );
    const sub = [ALL.columns[5]!, ALL.columns[4]!, ALL.columns[0]!];
    expect(await ep.checksums(sub, [{}])).toEqual([
      checksumRows(
        sub,
        EDGE_CANONICAL.map((r) => [r[5]!, r[4]!, r[0]!]),
      ),
    ]);
    // Hashed as another type (an int source column compared with this bigint one).
    const asInt = [{ ...ALL.columns[1]!, type: 'bigint' as const }];
    expect(await ep.checksums(asInt, [{}])).toEqual([
      checksumRows(
        asInt,
        EDGE_CANONICAL.map((r) => [r[1]!]),
      ),
    ]);
    await ep.close();
  });

  it('orders text keys by code point, whatever the column collation', async () => {
    const names = ['', 'a', 'B', 'é', '😀', 'z', 'Z', '\uffff', 'a\u0000b', 'ab'];
    const expected = [...names].sort((a, b) => compareKeys([a], [b]));
    for (const collate of ['', ' COLLATE NOCASE']) {
      const file = freshFile();
      const db = new Database(file);
      db.exec(`CREATE TABLE t (k TEXT${collate} PRIMARY KEY, v INT)`);
      const distinct = collate === '' ? names : names.filter((n) => n !== 'Z');
      for (const [i, k] of distinct.entries()) db.prepare('INSERT INTO t VALUES (?, ?)').run(k, i);
      db.close();
      const want = expected.filter((n) => distinct.includes(n));
      const ep = await opened(file);
      expect((await collect(ep.scan({ batchRows: 3 }))).map((r) => r[0])).toEqual(want);
      expect((await collect(ep.scanKeys({ batchRows: 2 }))).map((k) => k[0])).toEqual(want);
      const tail = await collect(ep.scan({ range: { from: ['a'], to: ['é'] } }));
      expect(tail.map((r) => r[0])).toEqual(
        want.filter((n) => compareKeys([n], ['a']) >= 0 && compareKeys([n], ['é']) < 0),
      );
      expect(await ep.maxValue('k')).toBe('😀');
      await ep.close();
    }
  });

  it('reads by range, cursor and where filter', async () => {
    const file = freshFile();
    const schema: TableSchema = {
      key: ['g', 'id'],
      columns: [
        { name: 'g', type: 'text', nullable: false },
        { name: 'id', type: 'int', nullable: false },
        { name: 'at', type: 'timestamp', nullable: true },
        { name: 'amount', type: 'numeric', nullable: true },
      ],
    };
    const rows: Row[] = [];
    for (const g of ['x', 'y']) {
      for (let id = 0; id < 20; id++) {
        rows.push([g, id, `2026-01-01 00:00:${String(id).padStart(2, '0')}`, String(id * 5)]);
      }
    }
    await make(file, schema, rows);
    const ep = await opened(file);
    const range = await collect(
      ep.scan({ range: { from: ['x', 18], to: ['y', 2] }, batchRows: 1 }),
    );
    expect(range.map((r) => `${String(r[0])}${String(r[1])}`)).toEqual(['x18', 'x19', 'y0', 'y1']);
    expect(await ep.count({ from: ['x', 18], to: ['y', 2] })).toBe(4);
    const since = await collect(ep.scan({ since: { column: 'at', value: '2026-01-01 00:00:18' } }));
    expect(since.map((r) => `${String(r[0])}${String(r[1])}`)).toEqual([
      'x18',
      'x19',
      'y18',
      'y19',
    ]);
    // numeric cursors compare by value, not as text ('95' > '100' as text)
    expect(await ep.maxValue('amount')).toBe('95');
    const numeric = await collect(ep.scan({ since: { column: 'amount', value: '90' } }));
    expect(numeric).toHaveLength(4);
    await ep.close();
    const filtered = await opened(
      file,
      't',
      `&where=${encodeURIComponent("g = 'y' AND id % 2 = 0")}`,
    );
    expect(await filtered.count()).toBe(10);
    expect((await collect(filtered.scanKeys())).length).toBe(10);
    expect(
      (
        await filtered.fetch([
          ['x', 2],
          ['y', 2],
          ['y', 3],
        ])
      ).map((r) => r[1]),
    ).toEqual([2]);
    expect(await filtered.maxValue('id')).toBe(18);
    const sums = await filtered.checksums(schema.columns, [{}]);
    expect(sums[0]!.count).toBe(10);
    const points = await filtered.splitPoints(3);
    expect(points.every((p) => p[0] === 'y')).toBe(true);
    await filtered.close();
    expect((await failure(opened(file, 't', '&where=nonsense%20%3D%3D%3D'))).code).toBe(
      'BAD_ARGUMENT',
    );
  });

  it('fetches keys in key order, leaving absent ones out', async () => {
    const file = freshFile();
    await make(file, ALL, EDGE_ROWS);
    const ep = await opened(file);
    const keys: KeyTuple[] = [[43n], [999n], [-1n], [43n], [2n ** 63n - 1n]];
    expect((await ep.fetch(keys)).map((r) => r[0])).toEqual([-1n, 43n, 2n ** 63n - 1n]);
    const many = Array.from({ length: 1234 }, (_, i) => [BigInt(i - 600)]);
    expect((await ep.fetch(many)).map((r) => r[0])).toEqual([-1n, 0n, 42n, 43n]);
    expect(await ep.fetch([])).toEqual([]);
    await ep.close();
  });

  it('splits integer keys by arithmetic and others by stepping the index', async () => {
    const file = freshFile();
    const schema: TableSchema = {
      key: ['id'],
      columns: [
        { name: 'id', type: 'bigint', nullable: false },
        { name: 'v', type: 'text', nullable: true },
      ],
    };
    const dense: Row[] = Array.from({ length: 1000 }, (_, i) => [BigInt(i + 1), `v${i}`]);
    const sparse: Row[] = [...dense.slice(0, 100), [10n ** 15n, 'far']];
    await make(file, schema, dense, 'dense');
    await make(file, schema, sparse, 'sparse');
    const a = await opened(file, 'dense');
    expect(await a.splitPoints(4)).toEqual([[251n], [501n], [751n]]);
    const inside = await a.splitPoints(4, { from: [100n], to: [200n] });
    expect(inside).toEqual([[125n], [150n], [175n]]);
    expect(await a.splitPoints(1)).toEqual([]);
    await a.close();
    const b = await opened(file, 'sparse');
    const points = await b.splitPoints(4);
    expect(points).toEqual([[26n], [51n], [76n]]);
    await b.close();
    const text = await opened(file, 'dense', '&key=v');
    const tp = await text.splitPoints(5);
    expect(tp).toHaveLength(4);
    for (let i = 1; i < tp.length; i++) expect(compareKeys(tp[i - 1]!, tp[i]!)).toBeLessThan(0);
    expect(await text.splitPoints(5, { from: ['v5'], to: ['v50'] })).toEqual([]);
    await text.close();
  });

  it('composite keys with blobs and bools order and page by bytes', async () => {
    const file = freshFile();
    const schema: TableSchema = {
      key: ['k', 'flag'],
      columns: [
        { name: 'k', type: 'blob', nullable: false },
        { name: 'flag', type: 'bool', nullable: false },
        { name: 'v', type: 'blob', nullable: true },
      ],
    };
    const rows: Row[] = [];
    for (const k of [[], [0], [0, 0], [1], [255], [255, 0]]) {
      for (const flag of [false, true])
        rows.push([new Uint8Array(k), flag, new Uint8Array(600).fill(k.length)]);
    }
    await make(file, schema, rows);
    const ep = await opened(file);
    expect(normalizeRows(await collect(ep.scan({ batchRows: 5 })))).toEqual(normalizeRows(rows));
    const from: KeyTuple = [new Uint8Array([0, 0]), true];
    const got = await collect(ep.scanKeys({ range: { from } }));
    expect(got).toHaveLength(rows.length - 5);
    expect(await ep.checksums(schema.columns, [{ from }])).toEqual([
      checksumRows(schema.columns, rows.slice(5)),
    ]);
    await ep.close();
  });

  it('stops a scan when its signal aborts', async () => {
    const file = freshFile();
    await make(file, ALL, EDGE_ROWS);
    const ep = await opened(file);
    const controller = new AbortController();
    const it = ep.scan({ batchRows: 1, signal: controller.signal })[Symbol.asyncIterator]();
    await it.next();
    controller.abort();
    expect((await failure(it.next())).code).toBe('ABORTED');
    await ep.close();
  });
});
