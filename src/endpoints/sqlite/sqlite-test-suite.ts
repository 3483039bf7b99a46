/**
 * Helpers and fixtures shared by the SQLite endpoint's tests: temp files,
 * opening, collecting scans, expecting a TongbuError, and a row set with
 * every canonical type at its edges.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { isTongbuError } from '../../core/errors.js';
import { compareKeys, type Row } from '../table/canonical.js';
import type { TableSchema } from '../table/table-schema.js';
import { parseTableUrl } from '../table/table-url.js';
import { SqliteTable } from './sqlite-table.js';
export { collect } from '../../test-support/table-tests.js';

/** A temp directory removed after the file's tests; returns a fresh database path per call. */
export function tempFiles(prefix: string): { dir: string; fresh: () => string } {
  const dir = mkdtempSync(join(tmpdir(), `tongbu-${prefix}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let seq = 0;
  return { dir, fresh: () => join(dir, `t${seq++}.db`) };
}

export async function opened(file: string, table = 't', extra = ''): Promise<SqliteTable> {
  const ep = new SqliteTable(parseTableUrl(`sqlite:${file}?table=${table}${extra}`));
  await ep.open();
  return ep;
}

export async function make(
  file: string,
  schema: TableSchema,
  rows: readonly Row[],
  table = 't',
): Promise<void> {
  const ep = await opened(file, table);
  const w = await ep.beginWrite({ create: schema });
  await w.insert(schema.columns, rows);
  await w.commit();
  await ep.close();
}

export async function failure(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    if (isTongbuError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a failure');
}

export const ALL: TableSchema = {
  key: ['id'],
  columns: [
    { name: 'id', type: 'bigint', nullable: false },
    { name: 'i', type: 'int', nullable: true },
    { name: 'n', type: 'numeric', nullable: true, precision: 40, scale: 20 },
    { name: 'f', type: 'float', nullable: true },
    { name: 's', type: 'text', nullable: true },
    { name: 'b', type: 'blob', nullable: true },
    { name: 'ok', type: 'bool', nullable: true },
    { name: 'ts', type: 'timestamp', nullable: true },
    { name: 'tz', type: 'timestamptz', nullable: true },
    { name: 'd', type: 'date', nullable: true },
    { name: 'j', type: 'json', nullable: true },
    { name: 'u', type: 'uuid', nullable: true },
  ],
};

export const EDGE_ROWS: Row[] = [
  [-(2n ** 63n), null, null, null, null, null, null, null, null, null, null, null],
  [
    -1n,
    0,
    '0',
    0,
    '',
    new Uint8Array(0),
    false,
    '1970-01-01 00:00:00',
    '1970-01-01 00:00:00+00',
    '1970-01-01',
    '0',
    '00000000-0000-0000-0000-000000000000',
  ],
  [
    0n,
    -2147483648,
    '0.1',
    Infinity,
    'naïve 😀 \u0000 nul',
    new Uint8Array(2000).fill(7),
    true,
    '2026-03-04 05:06:07.000001',
    '2026-03-04 05:06:07.123456+00',
    '0001-01-01',
    '{"a":[1,2,{"b":null}],"c":"é"}',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  ],
  [
    2n ** 53n + 1n,
    2147483647,
    '12345678901234567890.12345678901234567891',
    -Infinity,
    '1.50',
    new Uint8Array([0, 255]),
    null,
    '9999-12-31 23:59:59.999999',
    null,
    '9999-12-31',
    '"text"',
    null,
  ],
  [
    2n ** 63n - 1n,
    7,
    '-0.000000000000000001',
    5e-324,
    ' ',
    new Uint8Array([1]),
    false,
    null,
    null,
    null,
    '123',
    null,
  ],
  [
    42n,
    null,
    '1e+3',
    1.7976931348623157e308,
    'tab\tnew\nline',
    null,
    null,
    null,
    null,
    null,
    '[]',
    null,
  ],
  [43n, null, null, 0.1, null, null, null, null, null, null, null, null],
];
EDGE_ROWS.sort((a, b) => compareKeys([a[0]!], [b[0]!]));
/** What the edge rows read back as. */
export const EDGE_CANONICAL = EDGE_ROWS.map((r) =>
  r[0] === 42n ? [...r.slice(0, 2), '1000', ...r.slice(3)] : r,
);
