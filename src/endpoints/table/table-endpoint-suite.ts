/**
 * The conformance suite every table endpoint passes (memory, SQLite,
 * PostgreSQL, MySQL/MariaDB): what the table sync engine relies on. Call
 * it inside a test file: `runTableEndpointSuite('postgres', (t) => …)`,
 * where the factory returns a new, unopened endpoint on table `t` of a test
 * database (the suite picks fresh names and drops nothing itself; `drop`
 * cleans up when given).
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  checksumRows,
  compareKeys,
  KEY_SUM_MODULUS,
  rowKey,
  type KeyTuple,
  type Row,
} from './canonical.js';
import type { TableEndpoint } from './table-endpoint.js';
import { keyIndexes, type TableSchema } from './table-schema.js';
import { collect } from '../../test-support/table-tests.js';

export interface TableSuiteFactory {
  open(table: string): TableEndpoint;
  drop?(table: string): Promise<void>;
}

/** Every canonical type, with values every engine holds exactly. */
export const SUITE_SCHEMA: TableSchema = {
  key: ['id'],
  columns: [
    { name: 'id', type: 'bigint', nullable: false },
    { name: 'n', type: 'int', nullable: true },
    { name: 'dec', type: 'numeric', nullable: true, precision: 18, scale: 4 },
    { name: 'f', type: 'float', nullable: true },
    { name: 'name', type: 'text', nullable: true },
    { name: 'data', type: 'blob', nullable: true },
    { name: 'ok', type: 'bool', nullable: true },
    { name: 'at', type: 'timestamp', nullable: true },
    { name: 'atz', type: 'timestamptz', nullable: true },
    { name: 'day', type: 'date', nullable: true },
    { name: 'doc', type: 'json', nullable: true },
    { name: 'uid', type: 'uuid', nullable: true },
  ],
};

export function suiteRows(count: number): Row[] {
  const rows: Row[] = [
    [1n, null, null, null, null, null, null, null, null, null, null, null],
    [
      2n,
      -2147483648,
      '-12345678901234.5',
      0.1,
      '',
      new Uint8Array([]),
      false,
      '1999-12-31 23:59:59.999999',
      '1970-01-01 00:00:01+00',
      '0001-01-01',
      '{"a":[1,true,null],"b":"x"}',
      '00000000-0000-0000-0000-000000000000',
    ],
    [
      9007199254740993n,
      2147483647,
      '0.0001',
      -1.5e-7,
      'naïve 😀 \t tab \n newline \\ back "q" \'s',
      new Uint8Array([0, 1, 0xfe, 0xff, 10, 13, 92]),
      true,
      '2026-11-24 12:00:00.5',
      '2038-01-19 03:14:07.123456+00',
      '9999-12-31',
      '{}',
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    ],
  ];
  for (let i = rows.length; i < count; i++) {
    rows.push([
      BigInt(i * 3),
      i,
      `${i}.${i % 10000}`.replace(/\.?0+$/, '') || '0',
      i / 8,
      `row-${i}`,
      new Uint8Array([i & 255]),
      i % 2 === 0,
      `2026-01-01 00:00:${String(i % 60).padStart(2, '0')}`,
      '2026-01-01 00:00:00+00',
      '2026-01-02',
      `{"i":${i}}`,
      null,
    ]);
  }
  return rows.sort((a, b) => compareKeys([a[0]!], [b[0]!]));
}

/** Rows equal as canonical values (Buffers and Uint8Arrays alike). */
export function normalizeRows(rows: readonly Row[]): unknown[] {
  return rows.map((r) =>
    r.map((v) => (v instanceof Uint8Array ? `blob:${Buffer.from(v).toString('hex')}` : v)),
  );
}

export function runTableEndpointSuite(name: string, factory: TableSuiteFactory): void {
  const made: string[] = [];
  let n = 0;
  const fresh = (): string => {
    const t = `tb_suite_${process.pid}_${Date.now().toString(36)}_${n++}`;
    made.push(t);
    return t;
  };
  const reopen = async (t: string): Promise<TableEndpoint> => {
    const ep = factory.open(t);
    await ep.open();
    return ep;
  };
  const create = async (t: string, schema: TableSchema, rows: readonly Row[]): Promise<void> => {
    const ep = await reopen(t);
    const w = await ep.beginWrite({ create: schema });
    await w.insert(schema.columns, rows);
    await w.commit();
    await ep.close();
  };

  afterAll(async () => {
    if (factory.drop !== undefined) for (const t of made) await factory.drop(t);
  });

  describe(`${name}: table endpoint conformance`, () => {
    it('a missing table has no schema', async () => {
      const ep = await reopen(fresh());
      expect(ep.schema).toBeUndefined();
      await ep.close();
    });

    it('every canonical type round-trips through create, insert and scan', async () => {
      const t = fresh();
      const rows = suiteRows(50);
      await create(t, SUITE_SCHEMA, rows);
      const ep = await reopen(t);
      expect(ep.schema?.key).toEqual(['id']);
      expect(ep.schema?.columns.map((c) => [c.name, c.type])).toEqual(
        SUITE_SCHEMA.columns.map((c) => [c.name, c.type]),
      );
      expect(normalizeRows(await collect(ep.scan({ batchRows: 7 })))).toEqual(normalizeRows(rows));
      expect(await ep.count()).toBe(rows.length);
      await ep.close();
    });

    it('checksums equal the reference over any ranges and column subsets', async () => {
      const t = fresh();
      const rows = suiteRows(40);
      await create(t, SUITE_SCHEMA, rows);
      const ep = await reopen(t);
      const points = await ep.splitPoints(4);
      expect(points.length).toBeGreaterThan(0);
      for (let i = 1; i < points.length; i++)
        expect(compareKeys(points[i - 1]!, points[i]!)).toBeLessThan(0);
      const ranges = [{}, { to: points[0]! }, { from: points[0]! }, { from: [3n], to: [30n] }];
      const cols = SUITE_SCHEMA.columns;
      const inR = (r: Row, range: { from?: KeyTuple; to?: KeyTuple }): boolean =>
        (range.from === undefined || compareKeys([r[0]!], range.from) >= 0) &&
        (range.to === undefined || compareKeys([r[0]!], range.to) < 0);
      const sums = await ep.checksums(cols, ranges);
      expect(sums).toEqual(
        ranges.map((range) =>
          checksumRows(
            cols,
            rows.filter((r) => inR(r, range)),
          ),
        ),
      );
      const sub = [cols[4]!, cols[0]!, cols[7]!];
      const subSums = await ep.checksums(sub, [{}]);
      expect(subSums).toEqual([
        checksumRows(
          sub,
          rows.map((r) => [r[4]!, r[0]!, r[7]!]),
        ),
      ]);
      await ep.close();
    });

    it('reads by range, cursor, keys and maximum', async () => {
      const t = fresh();
      const rows = suiteRows(30);
      await create(t, SUITE_SCHEMA, rows);
      const ep = await reopen(t);
      const inRange = await collect(ep.scan({ range: { from: [9n], to: [18n] } }));
      expect(inRange.map((r) => r[0])).toEqual([9n, 12n, 15n]);
      const since = await collect(ep.scan({ since: { column: 'n', value: 25 } }));
      expect(since.map((r) => r[1])).toEqual([25, 26, 27, 28, 29, 2147483647]);
      const keys = await collect(ep.scanKeys({ batchRows: 4 }));
      expect(keys).toEqual(rows.map((r) => [r[0]]));
      const got = await ep.fetch([[9n], [4n], [2n]]);
      expect(got.map((r) => r[0])).toEqual([2n, 9n]);
      expect(await ep.maxValue('n')).toBe(2147483647);
      expect(await ep.count({ from: [9n], to: [18n] })).toBe(3);
      await ep.close();
    });

    it('keySums fingerprints the key set of an integer key', async () => {
      const t = fresh();
      const rows = suiteRows(30);
      await create(t, SUITE_SCHEMA, rows);
      const ep = await reopen(t);
      if (ep.keySums === undefined) return;
      const expected = (from: bigint, to: bigint | undefined) => {
        const keys = rows
          .map((r) => r[0] as bigint)
          .filter((k) => k >= from && (to === undefined || k < to));
        return { count: keys.length, sum: keys.reduce((n, k) => n + (k % KEY_SUM_MODULUS), 0n) };
      };
      expect(await ep.keySums([{}, { from: [9n], to: [18n] }, { from: [60n] }])).toEqual([
        expected(-1n, undefined),
        expected(9n, 18n),
        expected(60n, undefined),
      ]);
      if (ep.keyBuckets !== undefined) {
        const buckets = await ep.keyBuckets(10n);
        const want = new Map<bigint, { count: number; sum: bigint }>();
        for (const r of rows) {
          const k = r[0] as bigint;
          const b = k / 10n;
          const old = want.get(b) ?? { count: 0, sum: 0n };
          want.set(b, { count: old.count + 1, sum: old.sum + (k % KEY_SUM_MODULUS) });
        }
        expect(new Map([...buckets].sort((x, y) => (x[0] < y[0] ? -1 : 1)))).toEqual(
          new Map([...want].sort((x, y) => (x[0] < y[0] ? -1 : 1))),
        );
      }
      await ep.close();
    });

    it('keyBuckets floors negative keys; keysIn lists the keys of disjoint ranges', async () => {
      const t = fresh();
      // Keys -40, -37, ... and one far below: buckets and ranges cross zero.
      const rows = suiteRows(30).map((r, i): Row => [BigInt(i * 3 - 40), ...r.slice(1)]);
      rows.push([-(2n ** 40n), ...rows[0]!.slice(1)]);
      await create(t, SUITE_SCHEMA, rows);
      const ep = await reopen(t);
      if (ep.keyBuckets === undefined) return;
      const keys = rows.map((r) => r[0] as bigint);
      const floorDiv = (k: bigint, w: bigint): bigint => (k - (((k % w) + w) % w)) / w;
      const want = new Map<bigint, { count: number; sum: bigint }>();
      for (const k of keys) {
        const b = floorDiv(k, 10n);
        const old = want.get(b) ?? { count: 0, sum: 0n };
        want.set(b, { count: old.count + 1, sum: old.sum + (k % KEY_SUM_MODULUS) });
      }
      const sorted = (m: Map<bigint, unknown>) =>
        new Map([...m].sort((x, y) => (x[0] < y[0] ? -1 : 1)));
      expect(sorted(await ep.keyBuckets(10n))).toEqual(sorted(want));
      if (ep.keysIn !== undefined) {
        const ranges = [{ to: [-37n] }, { from: [-5n], to: [8n] }, { from: [40n] }];
        const inRanges = keys.filter((k) => k < -37n || (k >= -5n && k < 8n) || k >= 40n);
        const got = (await ep.keysIn(ranges)).map((k) => BigInt(k[0] as bigint));
        expect(got.sort((x, y) => (x < y ? -1 : 1))).toEqual(
          inRanges.sort((x, y) => (x < y ? -1 : 1)),
        );
        expect(await ep.keysIn([])).toEqual([]);
      }
      await ep.close();
    });

    it('upserts and deletes become visible at commit; rollback leaves the table as it was', async () => {
      const t = fresh();
      const rows = suiteRows(10);
      await create(t, SUITE_SCHEMA, rows);
      const ep = await reopen(t);
      const cols = SUITE_SCHEMA.columns;
      const changed: Row = [12n, 66, '6.6', 6.5, 'six', null, true, null, null, null, null, null];
      const added: Row = [1000n, 1, '1', 1, 'new', null, null, null, null, null, '[1,2]', null];
      let w = await ep.beginWrite();
      await w.upsert(cols, [changed, added]);
      await w.delete([[9n], [12345n]]);
      await w.rollback();
      expect(normalizeRows(await collect(ep.scan()))).toEqual(normalizeRows(rows));
      w = await ep.beginWrite();
      await w.upsert(cols, [changed, added]);
      await w.delete([[9n], [12345n]]);
      await w.commit();
      const expected = rows
        .filter((r) => r[0] !== 9n)
        .map((r) => (r[0] === 12n ? changed : r))
        .concat([added])
        .sort((a, b) => compareKeys([a[0]!], [b[0]!]));
      const after = await reopen(t);
      expect(normalizeRows(await collect(after.scan()))).toEqual(normalizeRows(expected));
      await after.close();
      await ep.close();
    });

    it('a rolled-back create leaves no table', async () => {
      const t = fresh();
      const ep = await reopen(t);
      const w = await ep.beginWrite({ create: SUITE_SCHEMA });
      await w.insert(SUITE_SCHEMA.columns, suiteRows(5));
      await w.rollback();
      await ep.close();
      const again = await reopen(t);
      expect(again.schema).toBeUndefined();
      await again.close();
    });

    it('text keys are ordered by code point, composite keys lexicographically', async () => {
      const t = fresh();
      const schema: TableSchema = {
        key: ['k', 'v'],
        columns: [
          { name: 'k', type: 'text', nullable: false, precision: 64 },
          { name: 'v', type: 'int', nullable: false },
          { name: 'x', type: 'text', nullable: true },
        ],
      };
      const names = ['z', 'a', 'B', 'é', '😀', '\uffff', 'a b', 'ab', 'A', 'ß'];
      const rows: Row[] = names.flatMap((k, i) => [
        [k, 2, `${i}`],
        [k, -1, null],
      ]);
      await create(t, schema, rows);
      const ep = await reopen(t);
      const idx = keyIndexes(schema);
      const expected = [...rows].sort((a, b) => compareKeys(rowKey(a, idx), rowKey(b, idx)));
      expect(await collect(ep.scan({ batchRows: 3 }))).toEqual(expected);
      const points = await ep.splitPoints(3);
      for (let i = 1; i < points.length; i++)
        expect(compareKeys(points[i - 1]!, points[i]!)).toBeLessThan(0);
      const from = points[0] ?? ['a', 2];
      const tail = await collect(ep.scan({ range: { from } }));
      expect(tail).toEqual(expected.filter((r) => compareKeys(rowKey(r, idx), from) >= 0));
      await ep.close();
    });
  });
}
