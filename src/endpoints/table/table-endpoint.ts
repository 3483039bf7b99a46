/**
 * The interface every SQL table endpoint implements (SQLite, PostgreSQL,
 * MySQL/MariaDB, and the in-memory twin for tests). Rows are entries: the
 * key is the primary key (or the URL's `key=`), the content the canonical
 * row (canonical.ts). The table sync engine (src/sync/table-*.ts) reads and
 * writes only through this interface; engine clients (better-sqlite3, pg,
 * mysql2) stay inside their endpoint's folder.
 *
 * Ordering: every method that returns keys or rows "in key order" orders by
 * `compareKeys` (numbers by value, text by code point = binary collation,
 * blobs by bytes), whatever the table's own collation.
 *
 * The URL's `where=` filter applies to every read (scan, keys, fetch,
 * count, split points, checksums, max); writes are not filtered.
 */
import type { CanonicalValue, KeyRange, KeyTuple, Row, SegmentChecksum } from './canonical.js';
import type { Column, TableSchema } from './table-schema.js';

export type TableEngine = 'sqlite' | 'postgres' | 'mysql' | 'memory';

export interface ScanOptions {
  readonly range?: KeyRange;
  /**
   * Only rows whose `column` is >= `value` (canonical form of that column's
   * type): the incremental cursor. Rows whose cursor is NULL are not returned.
   */
  readonly since?: { readonly column: string; readonly value: CanonicalValue };
  /** Rows per yielded batch; the endpoint may round it. Default 5000. */
  readonly batchRows?: number;
  readonly signal?: AbortSignal;
}

export interface TableEndpoint {
  /** The URL as the user gave it, with any password replaced by `***`. */
  readonly url: string;
  readonly engine: TableEngine;
  /** The table name as given (`runs`, `public.runs`). */
  readonly table: string;

  /**
   * Connects and reads the table's schema. A refused connection is
   * CONNECTION_FAILED, bad credentials UNAUTHORIZED, a missing database
   * NOT_FOUND, each naming the host/user/database. A missing table is not an
   * error here: `schema` is then undefined. A table without a primary key
   * and without `key=` in the URL is BAD_ARGUMENT naming the table.
   */
  open(): Promise<void>;

  /** After open: the schema, or undefined when the table does not exist. */
  readonly schema: TableSchema | undefined;

  /** Rows in key order, in batches, canonical values in schema column order. */
  scan(options?: ScanOptions): AsyncIterable<Row[]>;

  /** Key tuples in key order, in batches. */
  scanKeys(options?: Omit<ScanOptions, 'since'>): AsyncIterable<KeyTuple[]>;

  /** The rows with these keys, in key order; keys not present are left out. */
  fetch(keys: readonly KeyTuple[]): Promise<Row[]>;

  /** Number of rows in the range (the whole table without one). */
  count(range?: KeyRange): Promise<number>;

  /**
   * Up to `parts - 1` distinct keys, ascending, that split `range` into
   * `parts` ranges of roughly equal row counts. Approximate is fine (sampling,
   * arithmetic on integer keys); fewer points when the range holds few rows.
   */
  splitPoints(parts: number, range?: KeyRange): Promise<KeyTuple[]>;

  /**
   * For each range: the row count and the sum of `rowHash(columns, row)`
   * over its rows, where `columns` are schema columns (any subset and order)
   * and a row's values are taken in that order. Must equal
   * `checksumRows(columns, rows)` of canonical.ts exactly; an endpoint
   * computes it in SQL where it can and falls back to reading the rows.
   */
  checksums(
    columns: readonly Column[],
    ranges: readonly KeyRange[],
    options?: { readonly signal?: AbortSignal },
  ): Promise<SegmentChecksum[]>;

  /**
   * Optional, for a table whose key is one int/bigint column: per range, the
   * row count and the exact sum of `key % 2147483647` (remainder with the
   * key's sign, as `%` in SQL). A cheap key-set fingerprint: incremental sync
   * uses it to find deletes without hashing keys.
   */
  keySums?(ranges: readonly KeyRange[]): Promise<SegmentChecksum[]>;

  /**
   * Optional, with `keySums`: the same fingerprint for every non-empty
   * bucket `floor(key / width)` of the whole table (the `where` filter
   * applies), in one pass. Incremental sync compares buckets of a few dozen
   * rows to find scattered deletes without reading every key.
   */
  keyBuckets?(width: bigint): Promise<Map<bigint, SegmentChecksum>>;

  /**
   * Optional, with `keyBuckets`: the keys in any of these disjoint ranges of
   * the one integer key column (the `where` filter applies), in no
   * particular order, read in one statement where the engine allows it.
   * Incremental sync lists the keys of the buckets that differ with it.
   */
  keysIn?(ranges: readonly KeyRange[]): Promise<KeyTuple[]>;

  /** The greatest non-null value of a column, or null when there is none. */
  maxValue(column: string): Promise<CanonicalValue>;

  /**
   * Starts one write transaction. With `create`, the table is created first
   * (types mapped from the canonical schema, the key as primary key) and is
   * known to be empty, so `insert` may take the engine's bulk path (COPY,
   * multi-row INSERT, one SQLite transaction; indexes may be built at commit).
   */
  beginWrite(options?: { readonly create?: TableSchema }): Promise<TableWriter>;

  /** Declared when the endpoint offers an engine-native checksum. */
  readonly native?: NativeChecksums;

  close(): Promise<void>;
}

/**
 * One transaction on a table. Nothing is visible to other readers until
 * `commit`; `rollback` (or a failed commit) leaves the table as it was,
 * dropping it if `beginWrite` created it. Calls are sequential.
 */
export interface TableWriter {
  /**
   * Rows whose keys the table does not hold (a new table, or keys known
   * absent). The endpoint may buffer them; `commit` flushes. `columns` are
   * the columns each row carries, in order, and include the key.
   */
  insert(columns: readonly Column[], rows: readonly Row[]): Promise<void>;
  /** Inserts or replaces rows by key (the columns given are overwritten). */
  upsert(columns: readonly Column[], rows: readonly Row[]): Promise<void>;
  /** Removes rows by key; absent keys are no error. */
  delete(keys: readonly KeyTuple[]): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

/**
 * Optional, with `TableEndpoint.native`: a cheaper checksum an engine
 * computes with its own hash functions (PostgreSQL's
 * `hash_record_extended`, say). Two endpoints may compare native checksums
 * only when their `nativeChecksumId(columns)` strings are equal (same
 * engine, same native column types, same method); otherwise the engine uses
 * the portable `checksums`.
 */
export interface NativeChecksums {
  nativeChecksumId(columns: readonly Column[]): string;
  nativeChecksums(
    columns: readonly Column[],
    ranges: readonly KeyRange[],
    options?: { readonly signal?: AbortSignal },
  ): Promise<SegmentChecksum[]>;
}
