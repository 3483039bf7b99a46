/**
 * Segment checksums computed by the server. Portable: per row the md5 of
 * `rowHashText` (canonical.ts) built in SQL from each column's canonical
 * text, the first 60 bits summed exactly as numeric. JSON columns have no
 * canonical text in SQL (sorted keys), so ranges over them read the rows
 * and hash in JS. Native: `sum(hash_record_extended(ROW(…), 0))`, about ten
 * times cheaper, comparable only between PostgreSQL tables with the same
 * native column types (`nativeChecksumId`). Ranges run concurrently on the
 * pool; an abort cancels the statements on the server.
 */
import type pg from 'pg';
import { checksumRows, type KeyRange, type SegmentChecksum } from '../table/canonical.js';
import type { Column, ColumnType } from '../table/table-schema.js';
import { copyOutRows } from './postgres-copy.js';
import { cancellableQuery, type Connection } from './postgres-session.js';
import type { TableSql } from './postgres-sql.js';
import { outputText, selectExpr, type PgColumn } from './postgres-types.js';

export interface ChecksumContext {
  readonly pool: pg.Pool;
  readonly conn: Connection;
  readonly sql: TableSql;
}

/** The canonical text of a non-null value, in SQL (not for json: see `hashableInSql`). */
export function hashTextExpr(c: PgColumn): string {
  switch (c.kind) {
    case 'numeric':
      return `trim_scale(${c.ident})::text`;
    case 'float8':
      return floatTextSql(c.ident);
    case 'float4':
      return floatTextSql(`${c.ident}::text::float8`);
    case 'bytea':
      return `encode(${c.ident}, 'hex')`;
    case 'bool':
      return `CASE WHEN ${c.ident} THEN 't' WHEN NOT ${c.ident} THEN 'f' END`;
    case 'other':
      return outputText(c);
    default:
      return `${c.ident}::text`;
  }
}

/**
 * `floatText` in SQL. PostgreSQL's float8 output is the shortest round-trip
 * text except for some doubles between 2^54 and 2^86 (all integers there):
 * 8.2641558e+19 prints as 8.264155800000001e+19 on PostgreSQL 15. There the
 * exact integer (built from two exact halves) is rounded to 15, then 16
 * significant digits; the first that reads back as the same double is the
 * shortest text (a double holds at most one 15-digit decimal, and the
 * nearest 16-digit one is the one to take), else PostgreSQL's 17 digits are.
 * Plain expressions only, no subquery: the checksum query stays parallel.
 */
export function floatTextSql(v: string): string {
  const a = `abs(${v})`;
  const n = `(trunc(${a} / 1099511627776)::int8::numeric * 1099511627776 + (${a} - trunc(${a} / 1099511627776) * 1099511627776)::int8)`;
  const rounded = (digits: number): string => `round(${n}, ${digits} - length(${n}::text))`;
  const text = (c: string): string => {
    const d = `rtrim(${c}::text, '0')`;
    return (
      `CASE WHEN ${v} < 0 THEN '-' ELSE '' END || left(${d}, 1) || ` +
      `CASE WHEN length(${d}) > 1 THEN '.' || substr(${d}, 2) ELSE '' END || ` +
      `'e+' || lpad((length(${c}::text) - 1)::text, 2, '0')`
    );
  };
  return (
    `CASE WHEN ${a} < 9007199254740992 OR ${a} >= 1e30 THEN ${v}::text ` +
    `WHEN ${rounded(15)}::float8 = ${a} THEN ${text(rounded(15))} ` +
    `WHEN ${rounded(16)}::float8 = ${a} THEN ${text(rounded(16))} ` +
    `ELSE ${v}::text END`
  );
}

/** JSON has no canonical text in SQL (key order); those columns hash in JS. */
export function hashableInSql(c: PgColumn, asType: ColumnType): boolean {
  return c.kind !== 'json' && c.kind !== 'jsonb' && asType !== 'json';
}

/**
 * One column's part of `rowHashText` in SQL: `<bytes>:<text>` or `~`.
 * Fixed-width texts skip computing the text twice for its length.
 */
function columnHashSql(c: PgColumn): string {
  switch (c.kind) {
    case 'bool':
      return `CASE WHEN ${c.ident} THEN '1:t' WHEN NOT ${c.ident} THEN '1:f' ELSE '~' END`;
    case 'uuid':
      return `coalesce('36:' || ${c.ident}::text, '~')`;
    default: {
      const t = hashTextExpr(c);
      return `coalesce(octet_length(${t}) || ':' || ${t}, '~')`;
    }
  }
}

/** The row hash text of canonical.ts as a SQL expression. */
function rowHashTextSql(cols: readonly PgColumn[]): string {
  return cols.length === 0 ? `''` : cols.map(columnHashSql).join(' || ');
}

async function sqlSums(
  ctx: ChecksumContext,
  body: string,
  range: KeyRange,
  signal?: AbortSignal,
): Promise<SegmentChecksum> {
  const text = `SELECT count(*)::text, coalesce(sum(${body}), 0)::text FROM ${ctx.sql.from}${ctx.sql.whereClause({ range })}`;
  const rows = await cancellableQuery(ctx.pool, ctx.conn, text, signal);
  const [count, sum] = rows[0]!;
  return { count: Number(count), sum: BigInt(sum!) };
}

export async function portableChecksums(
  ctx: ChecksumContext,
  columns: readonly Column[],
  ranges: readonly KeyRange[],
  signal?: AbortSignal,
): Promise<SegmentChecksum[]> {
  const cols = columns.map((c) => ctx.sql.column(c.name));
  const inSql = cols.every((c, i) => hashableInSql(c, columns[i]!.type));
  if (!inSql)
    return Promise.all(ranges.map((range) => checksumInJs(ctx, columns, cols, range, signal)));
  const body = `('x' || substr(md5(${rowHashTextSql(cols)}), 1, 15))::bit(60)::bigint`;
  return Promise.all(ranges.map((range) => sqlSums(ctx, body, range, signal)));
}

async function checksumInJs(
  ctx: ChecksumContext,
  columns: readonly Column[],
  cols: readonly PgColumn[],
  range: KeyRange,
  signal?: AbortSignal,
): Promise<SegmentChecksum> {
  const select = `SELECT ${cols.map(selectExpr).join(', ')} FROM ${ctx.sql.from}${ctx.sql.whereClause({ range })}`;
  let count = 0;
  let sum = 0n;
  for await (const batch of copyOutRows(ctx.pool, ctx.conn, select, cols, 10_000, signal)) {
    const part = checksumRows(columns, batch);
    count += part.count;
    sum += part.sum;
  }
  return { count, sum };
}

/** What goes into the native row hash: values as they are, or as hashable text. */
function nativeExpr(c: PgColumn): string {
  if (c.kind === 'json') return `${c.ident}::jsonb`;
  if (c.kind === 'other') return `${c.ident}::text`;
  return c.ident;
}

export function nativeChecksumId(ctx: ChecksumContext, columns: readonly Column[]): string {
  return `postgres:hre1:${columns.map((c) => ctx.sql.column(c.name).column.nativeType ?? '').join(',')}`;
}

export async function nativeChecksums(
  ctx: ChecksumContext,
  columns: readonly Column[],
  ranges: readonly KeyRange[],
  signal?: AbortSignal,
): Promise<SegmentChecksum[]> {
  const cols = columns.map((c) => ctx.sql.column(c.name));
  const body = `hash_record_extended(ROW(${cols.map(nativeExpr).join(', ')}), 0)`;
  return Promise.all(ranges.map((range) => sqlSums(ctx, body, range, signal)));
}
