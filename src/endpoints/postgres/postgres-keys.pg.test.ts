import { afterAll, describe, expect, it } from 'vitest';
import { databaseAvailable } from '../../test-support/databases.js';
import {
  compareKeys,
  compareValues,
  inRange,
  type CanonicalValue,
  type Row,
} from '../table/canonical.js';
import { normalizeRows } from '../table/table-endpoint-suite.js';
import type { ColumnType } from '../table/table-schema.js';
import { collect } from '../../test-support/table-tests.js';
import { pgTestTables } from './postgres-test-suite.js';

const ok = await databaseAvailable('postgres');

/** Key values per canonical type, in no particular order. */
const KEYS: [ColumnType, CanonicalValue[]][] = [
  ['int', [5, -3, 0, 2147483647, -2147483648, 42]],
  ['bigint', [5n, -3n, 9007199254740993n, -(2n ** 63n), 0n]],
  ['numeric', ['10', '9', '-1', '0.5', '100', '-0.25', '9.75']],
  ['float', [0.1, -1e300, 1e21, -0.5, 3, 1e-7]],
  ['text', ['b', 'B', 'ä', '', 'a b', '😀', '\uffff']],
  [
    'blob',
    [
      Buffer.from([1]),
      Buffer.from([]),
      Buffer.from([0, 255]),
      Buffer.from([0]),
      Buffer.from([255]),
    ],
  ],
  ['bool', [true, false]],
  [
    'timestamp',
    [
      '2020-01-01 00:00:00.5',
      '2020-01-01 00:00:00',
      '1999-12-31 23:59:59.999999',
      '0100-01-01 00:00:00',
    ],
  ],
  ['timestamptz', ['2020-01-01 00:00:00.5+00', '1970-01-01 00:00:00+00', '2038-01-19 03:14:07+00']],
  ['date', ['2020-01-02', '2020-01-01', '1000-06-30', '9999-12-31']],
  [
    'uuid',
    [
      'ffffffff-0000-0000-0000-000000000000',
      '00000000-0000-0000-0000-000000000001',
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    ],
  ],
];

describe.skipIf(!ok)('PostgresTable key order', () => {
  const { admin, made, fresh, open } = pgTestTables('tb_pgk', 1);
  afterAll(async () => {
    for (const t of made) await admin.query(`DROP TABLE IF EXISTS "${t}"`);
    await admin.end();
  });

  for (const [type, values] of KEYS) {
    it(`orders, ranges and fetches ${type} keys as compareKeys does`, async () => {
      const t = fresh();
      const ep = await open(t);
      const columns = [
        { name: 'k', type, nullable: false },
        { name: 'v', type: 'int' as const, nullable: true },
      ];
      const w = await ep.beginWrite({ create: { key: ['k'], columns } });
      await w.insert(
        columns,
        values.map((k, i) => [k, i]),
      );
      await w.commit();
      const sorted = [...values].sort(compareValues);
      expect(normalizeRows(await collect(ep.scanKeys({ batchRows: 2 })))).toEqual(
        normalizeRows(sorted.map((k) => [k])),
      );
      const range = { from: [sorted[1]!], to: [sorted[sorted.length - 1]!] };
      const inR = sorted.filter((k) => inRange([k], range));
      expect(normalizeRows((await collect(ep.scan({ range }))).map((r) => [r[0]!]))).toEqual(
        normalizeRows(inR.map((k) => [k])),
      );
      expect(await ep.count(range)).toBe(inR.length);
      const fetched = await ep.fetch([[sorted[0]!], [sorted[sorted.length - 1]!]]);
      expect(normalizeRows(fetched.map((r) => [r[0]!]))).toEqual(
        normalizeRows([[sorted[0]!], [sorted[sorted.length - 1]!]]),
      );
      const points = await ep.splitPoints(3);
      for (let i = 1; i < points.length; i++)
        expect(compareKeys(points[i - 1]!, points[i]!)).toBeLessThan(0);
      const w2 = await ep.beginWrite();
      await w2.upsert(columns, [[sorted[0]!, 99]]);
      await w2.delete([[sorted[1]!]]);
      await w2.commit();
      const after = await collect(ep.scan());
      expect(after.length).toBe(values.length - 1);
      expect(after[0]![1]).toBe(99);
      await ep.close();
    });
  }

  it('reads, fetches and deletes keys of types it reads as text (inet)', async () => {
    const t = fresh();
    await admin.query(`CREATE TABLE "${t}" (k inet PRIMARY KEY, v int)`);
    await admin.query(
      `INSERT INTO "${t}" VALUES ('192.168.0.1', 1), ('10.0.0.1', 2), ('::1', 3), ('10.0.0.0/8', 4)`,
    );
    const ep = await open(t);
    expect(ep.schema?.columns[0]).toMatchObject({ type: 'text', nativeType: 'inet' });
    const keys = (await collect(ep.scanKeys())).map((k) => k[0]);
    expect(keys).toEqual([...keys].sort((a, b) => compareValues(a!, b!)));
    expect(await ep.fetch([['10.0.0.1'], ['::1'], ['1.1.1.1']])).toEqual([
      ['10.0.0.1', 2],
      ['::1', 3],
    ]);
    expect(await ep.count({ from: ['10.0.0.1'], to: ['192.168.0.1'] })).toBe(1);
    const w = await ep.beginWrite();
    await w.delete([['::1']]);
    await w.upsert(ep.schema!.columns, [['10.0.0.1', 20]]);
    await w.commit();
    expect(await ep.count()).toBe(3);
    expect(await ep.fetch([['10.0.0.1']])).toEqual([['10.0.0.1', 20]]);
    await ep.close();
  });

  it('compares a numeric cursor by value, a numeric key as compareKeys does', async () => {
    const t = fresh();
    await admin.query(`CREATE TABLE "${t}" (id int PRIMARY KEY, amount numeric(8,2))`);
    await admin.query(
      `INSERT INTO "${t}" VALUES (1, 9.5), (2, 10), (3, 100.25), (4, NULL), (5, -3)`,
    );
    const ep = await open(t);
    expect(await ep.maxValue('amount')).toBe('100.25');
    const rows: Row[] = await collect(ep.scan({ since: { column: 'amount', value: '9.75' } }));
    expect(rows).toEqual([
      [2, '10'],
      [3, '100.25'],
    ]);
    await ep.close();
  });

  it('orders text keys by code point whatever the collation', async () => {
    const t = fresh();
    await admin.query(`CREATE TABLE "${t}" (k text COLLATE "en-x-icu" PRIMARY KEY, v int)`);
    const names = ['a', 'B', 'é', '😀', 'z', 'A', 'b', 'É', 'e\u0301', '\uffff', 'ß', 'ss', ' '];
    await admin.query(
      `INSERT INTO "${t}" SELECT k, ord FROM unnest($1::text[]) WITH ORDINALITY AS u(k, ord)`,
      [names],
    );
    const ep = await open(t);
    const expected = [...names].sort((x, y) => compareValues(x, y));
    expect((await collect(ep.scanKeys({ batchRows: 4 }))).map((k) => k[0])).toEqual(expected);
    expect(
      (await collect(ep.scan({ range: { from: ['B'], to: ['z'] } }))).map((r) => r[0]),
    ).toEqual(expected.filter((k) => inRange([k], { from: ['B'], to: ['z'] })));
    expect(await ep.maxValue('k')).toBe(expected[expected.length - 1]);
    const points = await ep.splitPoints(4);
    expect(points.length).toBe(3);
    for (let i = 1; i < points.length; i++)
      expect(compareKeys(points[i - 1]!, points[i]!)).toBeLessThan(0);
    const sizes = await Promise.all(
      [
        { to: points[0]! },
        { from: points[0]!, to: points[1]! },
        { from: points[1]!, to: points[2]! },
        { from: points[2]! },
      ].map((r) => ep.count(r)),
    );
    expect(sizes.reduce((s, n) => s + n)).toBe(names.length);
    await ep.close();
  });
});
