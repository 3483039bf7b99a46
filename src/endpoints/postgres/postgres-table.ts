/**
 * The PostgreSQL table endpoint. Reads stream `COPY (SELECT …) TO STDOUT`
 * in key order (text keys under COLLATE "C", so the order is code point
 * order whatever the column's collation); values arrive as canonical text
 * straight from SQL (trim_scale for numeric, hex for bytea) and become
 * canonical values without going through JS Dates. Checksums are computed
 * by the server (postgres-checksums.ts); writes run in one transaction on a
 * dedicated client (postgres-writer.ts). Types: postgres-types.ts.
 */
import type pg from 'pg';
import { TongbuError } from '../../core/errors.js';
import {
  compareKeys,
  floorDivSql,
  type CanonicalValue,
  type KeyRange,
  type KeyTuple,
  type Row,
  type SegmentChecksum,
} from '../table/canonical.js';
import type {
  NativeChecksums,
  ScanOptions,
  TableEndpoint,
  TableWriter,
} from '../table/table-endpoint.js';
import type { Column, TableSchema } from '../table/table-schema.js';
import type { TableUrl } from '../table/table-url.js';
import { readShape, type PgTableShape } from './postgres-catalog.js';
import {
  nativeChecksumId,
  nativeChecksums,
  portableChecksums,
  type ChecksumContext,
} from './postgres-checksums.js';
import { copyOutRows } from './postgres-copy.js';
import {
  connectionFor,
  createPool,
  rawQuery,
  type Connection,
  type RawRow,
} from './postgres-session.js';
import { TableSql } from './postgres-sql.js';
import {
  decoder,
  fromTextParam,
  keyText,
  selectExpr,
  valueOrderExpr,
  type PgColumn,
} from './postgres-types.js';
import { PostgresWriter } from './postgres-writer.js';

const DEFAULT_BATCH = 5000;
/** Up to this many rows in a range, split points are exact (row_number stride). */
const EXACT_SPLIT_ROWS = 200_000;

export class PostgresTable implements TableEndpoint {
  readonly engine = 'postgres' as const;
  readonly url: string;
  readonly table: string;
  private readonly conn: Connection;
  private pool: pg.Pool | undefined;
  private shape: PgTableShape | undefined;
  private sql: TableSql | undefined;

  /** The server's version (150004 for 15.4), known after open. */
  private serverVersion = 0;

  /**
   * Native checksums: hash_record_extended from PostgreSQL 14 on. Older
   * servers answer with the portable checksum under another id, so two
   * endpoints still compare only like with like.
   */
  readonly native: NativeChecksums = {
    nativeChecksumId: (columns) =>
      this.serverVersion >= 140000
        ? nativeChecksumId(this.checksumContext(), columns)
        : `postgres:portable:${columns.map((c) => c.type).join(',')}`,
    nativeChecksums: (columns, ranges, options) =>
      this.serverVersion >= 140000
        ? nativeChecksums(this.checksumContext(), columns, ranges, options?.signal)
        : portableChecksums(this.checksumContext(), columns, ranges, options?.signal),
  };

  constructor(private readonly parsed: TableUrl) {
    this.url = parsed.display;
    this.table = parsed.table;
    this.conn = connectionFor(parsed);
  }

  async open(): Promise<void> {
    this.pool ??= createPool(this.conn);
    const version = await rawQuery(
      this.pool,
      this.conn,
      `SELECT current_setting('server_version_num')`,
    );
    this.serverVersion = Number(version[0]?.[0] ?? 0);
    await this.load();
  }

  get schema(): TableSchema | undefined {
    return this.shape?.schema;
  }

  async *scan(options: ScanOptions = {}): AsyncIterable<Row[]> {
    const sql = this.requireSql();
    const select = sql.select(sql.shape.columns, { range: options.range, since: options.since });
    yield* copyOutRows(
      this.requirePool(),
      this.conn,
      select,
      sql.shape.columns,
      batchSize(options),
      options.signal,
    );
  }

  async *scanKeys(options: Omit<ScanOptions, 'since'> = {}): AsyncIterable<KeyTuple[]> {
    const sql = this.requireSql();
    const keys = sql.shape.keyColumns;
    const select = sql.select(keys, { range: options.range });
    yield* copyOutRows(
      this.requirePool(),
      this.conn,
      select,
      keys,
      batchSize(options),
      options.signal,
    );
  }

  async fetch(keys: readonly KeyTuple[]): Promise<Row[]> {
    const sql = this.requireSql();
    if (keys.length === 0) return [];
    const kc = sql.shape.keyColumns;
    const conv = kc.map((c, i) => fromTextParam(c, `v.k${i}`)).join(', ');
    const params = kc.map((_c, i) => `$${i + 1}::text[]`).join(', ');
    const names = kc.map((_c, i) => `k${i}`).join(', ');
    const inKeys = `(${kc.map((c) => c.ident).join(', ')}) IN (SELECT ${conv} FROM unnest(${params}) AS v(${names}))`;
    const values = kc.map((c, i) => keys.map((k) => (k[i] === null ? null : keyText(c, k[i]!))));
    const rows = await rawQuery(
      this.requirePool(),
      this.conn,
      sql.select(sql.shape.columns, { extra: [inKeys] }),
      values,
    );
    return decodeRows(sql.shape.columns, rows);
  }

  async count(range?: KeyRange): Promise<number> {
    const sql = this.requireSql();
    const rows = await rawQuery(
      this.requirePool(),
      this.conn,
      `SELECT count(*)::text FROM ${sql.from}${sql.whereClause({ range })}`,
    );
    return Number(rows[0]![0]);
  }

  async keyBuckets(width: bigint): Promise<Map<bigint, SegmentChecksum>> {
    const sql = this.requireSql();
    const kc = sql.shape.keyColumns;
    if (kc.length !== 1)
      throw new TongbuError('INTERNAL', `${this.url}: keyBuckets needs a single integer key`);
    const k = `${kc[0]!.ident}::bigint`;
    const rows = await rawQuery(
      this.requirePool(),
      this.conn,
      // Grouped by the bigint (a text key would be hashed as text), as text after.
      `SELECT b::text, n::text, s::text FROM (SELECT ${floorDivSql(k, `${width}::bigint`)} AS b, count(*) AS n, sum(${k} % 2147483647) AS s FROM ${sql.from}${sql.whereClause({})} GROUP BY 1) AS g`,
    );
    const out = new Map<bigint, SegmentChecksum>();
    for (const r of rows)
      out.set(BigInt(String(r[0])), { count: Number(r[1]), sum: BigInt(String(r[2])) });
    return out;
  }

  async keysIn(ranges: readonly KeyRange[]): Promise<KeyTuple[]> {
    const sql = this.requireSql();
    const kc = sql.shape.keyColumns;
    if (kc.length !== 1)
      throw new TongbuError('INTERNAL', `${this.url}: keysIn needs a single integer key`);
    if (ranges.length === 0) return [];
    // One index range scan per range, all in one statement: a join on
    // BETWEEN would make the planner scan the whole table.
    const k = kc[0]!.ident;
    const inner = sql.select(kc, { extra: [`${k} >= r.lo`, `${k} <= r.hi`] });
    const rows = await rawQuery(
      this.requirePool(),
      this.conn,
      `SELECT t.* FROM unnest($1::bigint[], $2::bigint[]) AS r(lo, hi) CROSS JOIN LATERAL (${inner}) AS t`,
      [ranges.map((r) => int64Bound(r.from, 0n)), ranges.map((r) => int64Bound(r.to, -1n))],
    );
    return decodeRows(kc, rows);
  }

  async keySums(ranges: readonly KeyRange[]): Promise<SegmentChecksum[]> {
    const sql = this.requireSql();
    const kc = sql.shape.keyColumns;
    if (kc.length !== 1)
      throw new TongbuError('INTERNAL', `${this.url}: keySums needs a single integer key`);
    const k = kc[0]!.ident;
    return Promise.all(
      ranges.map(async (range) => {
        const rows = await rawQuery(
          this.requirePool(),
          this.conn,
          `SELECT count(*)::text, coalesce(sum(${k}::bigint % 2147483647), 0)::text FROM ${sql.from}${sql.whereClause({ range })}`,
        );
        return { count: Number(rows[0]![0]), sum: BigInt(String(rows[0]![1])) };
      }),
    );
  }

  async splitPoints(parts: number, range: KeyRange = {}): Promise<KeyTuple[]> {
    const sql = this.requireSql();
    if (parts < 2) return [];
    const kc = sql.shape.keyColumns;
    if (kc.length === 1 && (kc[0]!.kind === 'int' || kc[0]!.kind === 'bigint')) {
      return this.integerSplitPoints(kc[0]!, parts, range);
    }
    const n = await this.count(range);
    if (n < 2) return [];
    if (n > EXACT_SPLIT_ROWS) {
      const sampled = await this.sampledSplitPoints(parts, range, n);
      if (sampled !== undefined) return sampled;
    }
    const positions: number[] = [];
    for (let i = 1; i < Math.min(parts, n); i++) {
      const p = Math.floor((i * n) / parts) + 1;
      if (p > 1 && p !== positions[positions.length - 1]) positions.push(p);
    }
    const aliased = kc.map((c, i) => `${selectExpr(c)} AS k${i}`).join(', ');
    const names = kc.map((_c, i) => `k${i}`).join(', ');
    const text =
      `SELECT ${names} FROM (SELECT ${aliased}, row_number() OVER (${sql.orderBy().trim()}) AS tongbu_rn ` +
      `FROM ${sql.from}${sql.whereClause({ range })}) AS s WHERE tongbu_rn = ANY($1::bigint[]) ORDER BY tongbu_rn`;
    const rows = await rawQuery(this.requirePool(), this.conn, text, [positions]);
    return decodeRows(kc, rows);
  }

  private async integerSplitPoints(
    key: PgColumn,
    parts: number,
    range: KeyRange,
  ): Promise<KeyTuple[]> {
    const sql = this.requireSql();
    const text = `SELECT min(${key.ident})::text, max(${key.ident})::text FROM ${sql.from}${sql.whereClause({ range })}`;
    const [lo, hi] = (await rawQuery(this.requirePool(), this.conn, text))[0]!;
    if (lo === null || hi === null || lo === undefined || hi === undefined) return [];
    const min = BigInt(lo);
    const span = BigInt(hi) - min + 1n;
    const points: KeyTuple[] = [];
    let last = min;
    for (let i = 1n; i < BigInt(parts); i++) {
      const p = min + (span * i) / BigInt(parts);
      if (p > last) points.push([key.kind === 'int' ? Number(p) : p]);
      last = p > last ? p : last;
    }
    return points;
  }

  /** Quantiles of a block sample; undefined when the sample is too small to use. */
  private async sampledSplitPoints(
    parts: number,
    range: KeyRange,
    n: number,
  ): Promise<KeyTuple[] | undefined> {
    const sql = this.requireSql();
    const kc = sql.shape.keyColumns;
    const target = Math.max(parts * 100, 20_000);
    const pct = Math.min(100, (target * 100) / n);
    const list = kc.map(selectExpr).join(', ');
    const text = `SELECT ${list} FROM ${sql.from} TABLESAMPLE SYSTEM (${pct.toFixed(6)})${sql.whereClause({ range })}${sql.orderBy()}`;
    const sample = decodeRows(kc, await rawQuery(this.requirePool(), this.conn, text));
    if (sample.length < parts * 4) return undefined;
    const points: KeyTuple[] = [];
    for (let i = 1; i < parts; i++) {
      const key = sample[Math.floor((i * sample.length) / parts)]!;
      const last = points[points.length - 1];
      if (range.from !== undefined && compareKeys(key, range.from) <= 0) continue;
      if (last === undefined || compareKeys(last, key) < 0) points.push(key);
    }
    return points;
  }

  async checksums(
    columns: readonly Column[],
    ranges: readonly KeyRange[],
    options?: { readonly signal?: AbortSignal },
  ): Promise<SegmentChecksum[]> {
    return portableChecksums(this.checksumContext(), columns, ranges, options?.signal);
  }

  async maxValue(column: string): Promise<CanonicalValue> {
    const sql = this.requireSql();
    const c = sql.column(column);
    if (c.kind === 'json' || c.kind === 'jsonb') {
      throw new TongbuError('BAD_ARGUMENT', `${this.url}: json column "${column}" has no order`, {
        data: { column },
      });
    }
    const text = `SELECT ${selectExpr(c)} FROM ${sql.from}${sql.whereClause({ extra: [`${c.ident} IS NOT NULL`] })} ORDER BY ${valueOrderExpr(c)} DESC LIMIT 1`;
    const rows = await rawQuery(this.requirePool(), this.conn, text);
    const v = rows[0]?.[0];
    return v === undefined || v === null ? null : decoder(c)(v);
  }

  async beginWrite(options: { readonly create?: TableSchema } = {}): Promise<TableWriter> {
    this.requirePool();
    const existing =
      this.shape === undefined
        ? undefined
        : { shape: this.shape, primary: this.parsed.key === undefined };
    const created = options.create !== undefined;
    return PostgresWriter.begin(this.conn, this.table, existing, options.create, async () => {
      if (created) await this.load();
    });
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.end();
  }

  private async load(): Promise<void> {
    this.shape = await readShape(this.requirePool(), this.conn, this.table, this.parsed.key);
    this.sql =
      this.shape === undefined
        ? undefined
        : new TableSql(this.table, this.shape, this.parsed.where);
  }

  private checksumContext(): ChecksumContext {
    return { pool: this.requirePool(), conn: this.conn, sql: this.requireSql() };
  }

  private requirePool(): pg.Pool {
    if (this.pool === undefined) throw new TongbuError('INTERNAL', `${this.url}: not open`);
    return this.pool;
  }

  private requireSql(): TableSql {
    this.requirePool();
    if (this.sql === undefined) {
      throw new TongbuError('SOURCE_NOT_FOUND', `${this.url}: no table "${this.table}"`, {
        data: { table: this.table },
      });
    }
    return this.sql;
  }
}

function batchSize(options: { readonly batchRows?: number }): number {
  return Math.max(1, Math.floor(options.batchRows ?? DEFAULT_BATCH));
}

function decodeRows(cols: readonly PgColumn[], rows: readonly RawRow[]): Row[] {
  const decode = cols.map(decoder);
  return rows.map((r) => r.map((v, i) => (v === null ? null : decode[i]!(v))));
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * An inclusive bigint bound (as text) of a range over an integer key: the
 * range's bound plus `shift` (-1 turns an exclusive upper bound inclusive),
 * clamped to int64; an open end is int64's own end.
 */
function int64Bound(bound: KeyTuple | undefined, shift: bigint): string {
  const v = bound?.[0];
  if (v === undefined) return String(shift === 0n ? INT64_MIN : INT64_MAX);
  if (typeof v !== 'bigint' && typeof v !== 'number')
    throw new TongbuError('INTERNAL', 'keysIn needs a single integer key');
  const b = BigInt(v) + shift;
  return String(b < INT64_MIN ? INT64_MIN : b > INT64_MAX ? INT64_MAX : b);
}
