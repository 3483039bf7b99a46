/**
 * The in-memory twin of a SQL table endpoint, for unit tests of the table
 * sync engine. Tables live in a `MemoryDatabase` shared by the endpoints
 * opened on it, so a test can open, write, close and reopen.
 */
import { TongbuError } from '../../core/errors.js';
import {
  checksumRows,
  compareKeys,
  compareValues,
  inRange,
  keyBucket,
  keySumTerm,
  rowKey,
  type CanonicalValue,
  type KeyRange,
  type KeyTuple,
  type Row,
  type SegmentChecksum,
} from './canonical.js';
import type { ScanOptions, TableEndpoint, TableWriter } from './table-endpoint.js';
import { columnIndex, keyIndexes, type Column, type TableSchema } from './table-schema.js';

interface StoredTable {
  schema: TableSchema;
  /** Rows by key text; the key text is internal only. */
  rows: Map<string, Row>;
}

export class MemoryDatabase {
  readonly tables = new Map<string, StoredTable>();

  /** Puts rows straight into a table (test set-up), creating it. */
  load(table: string, schema: TableSchema, rows: readonly Row[]): void {
    const stored: StoredTable = { schema, rows: new Map() };
    const idx = keyIndexes(schema);
    for (const row of rows) stored.rows.set(keyId(rowKey(row, idx)), row);
    this.tables.set(table, stored);
  }

  /** The rows of a table in key order. */
  rows(table: string): Row[] {
    const t = this.tables.get(table);
    if (t === undefined) return [];
    const idx = keyIndexes(t.schema);
    return [...t.rows.values()].sort((a, b) => compareKeys(rowKey(a, idx), rowKey(b, idx)));
  }
}

function keyId(key: KeyTuple): string {
  return JSON.stringify(key, (_k, v: unknown) =>
    typeof v === 'bigint'
      ? `n${v}`
      : v instanceof Uint8Array
        ? `b${Buffer.from(v).toString('hex')}`
        : v,
  );
}

export class MemoryTable implements TableEndpoint {
  readonly engine = 'memory' as const;
  readonly url: string;
  private opened = false;
  /** Reads fail with this error once set (tests of failures mid-run). */
  failReads: TongbuError | undefined;

  constructor(
    private readonly db: MemoryDatabase,
    readonly table: string,
    private readonly filter?: (row: Row, schema: TableSchema) => boolean,
  ) {
    this.url = `memory:${table}`;
  }

  async open(): Promise<void> {
    this.opened = true;
    return Promise.resolve();
  }

  get schema(): TableSchema | undefined {
    if (!this.opened) throw new TongbuError('INTERNAL', `${this.url}: not open`);
    return this.db.tables.get(this.table)?.schema;
  }

  private sorted(range?: KeyRange): Row[] {
    if (this.failReads !== undefined) throw this.failReads;
    const t = this.db.tables.get(this.table);
    if (t === undefined) throw new TongbuError('SOURCE_NOT_FOUND', `${this.url}: no such table`);
    const idx = keyIndexes(t.schema);
    return this.db
      .rows(this.table)
      .filter(
        (r) =>
          (this.filter === undefined || this.filter(r, t.schema)) &&
          inRange(rowKey(r, idx), range ?? {}),
      );
  }

  async *scan(options: ScanOptions = {}): AsyncIterable<Row[]> {
    const schema = this.requireSchema();
    let rows = this.sorted(options.range);
    const since = options.since;
    if (since !== undefined) {
      const i = columnIndex(schema, since.column);
      rows = rows.filter((r) => r[i] !== null && compareValues(r[i]!, since.value) >= 0);
    }
    const size = options.batchRows ?? 5000;
    for (let i = 0; i < rows.length; i += size) {
      options.signal?.throwIfAborted();
      yield rows.slice(i, i + size);
      await Promise.resolve();
    }
  }

  async *scanKeys(options: Omit<ScanOptions, 'since'> = {}): AsyncIterable<KeyTuple[]> {
    const idx = keyIndexes(this.requireSchema());
    for await (const batch of this.scan(options)) yield batch.map((r) => rowKey(r, idx));
  }

  async fetch(keys: readonly KeyTuple[]): Promise<Row[]> {
    const wanted = new Set(keys.map(keyId));
    const idx = keyIndexes(this.requireSchema());
    return Promise.resolve(this.sorted().filter((r) => wanted.has(keyId(rowKey(r, idx)))));
  }

  async count(range?: KeyRange): Promise<number> {
    return Promise.resolve(this.sorted(range).length);
  }

  async splitPoints(parts: number, range?: KeyRange): Promise<KeyTuple[]> {
    const idx = keyIndexes(this.requireSchema());
    const rows = this.sorted(range);
    const points: KeyTuple[] = [];
    for (let p = 1; p < parts; p++) {
      const row = rows[Math.floor((p * rows.length) / parts)];
      if (row === undefined || p * rows.length < parts) continue;
      const key = rowKey(row, idx);
      const last = points[points.length - 1];
      const first = rows[0];
      if (first !== undefined && compareKeys(key, rowKey(first, idx)) === 0) continue;
      if (last === undefined || compareKeys(last, key) < 0) points.push(key);
    }
    return Promise.resolve(points);
  }

  async checksums(
    columns: readonly Column[],
    ranges: readonly KeyRange[],
  ): Promise<SegmentChecksum[]> {
    const schema = this.requireSchema();
    const pick = columns.map((c) => columnIndex(schema, c.name));
    return Promise.resolve(
      ranges.map((range) =>
        checksumRows(
          columns,
          this.sorted(range).map((r) => pick.map((i) => r[i]!)),
        ),
      ),
    );
  }

  async keySums(ranges: readonly KeyRange[]): Promise<SegmentChecksum[]> {
    const idx = keyIndexes(this.requireSchema());
    return Promise.resolve(
      ranges.map((range) => {
        const rows = this.sorted(range);
        return {
          count: rows.length,
          sum: rows.reduce((n, r) => n + keySumTerm(rowKey(r, idx)), 0n),
        };
      }),
    );
  }

  async keysIn(ranges: readonly KeyRange[]): Promise<KeyTuple[]> {
    const idx = keyIndexes(this.requireSchema());
    return Promise.resolve(
      ranges.flatMap((range) => this.sorted(range).map((r) => rowKey(r, idx))),
    );
  }

  async keyBuckets(width: bigint): Promise<Map<bigint, SegmentChecksum>> {
    const idx = keyIndexes(this.requireSchema());
    const out = new Map<bigint, SegmentChecksum>();
    for (const r of this.sorted()) {
      const key = rowKey(r, idx);
      const b = keyBucket(key, width);
      const old = out.get(b) ?? { count: 0, sum: 0n };
      out.set(b, { count: old.count + 1, sum: old.sum + keySumTerm(key) });
    }
    return Promise.resolve(out);
  }

  async maxValue(column: string): Promise<CanonicalValue> {
    const i = columnIndex(this.requireSchema(), column);
    let max: CanonicalValue = null;
    for (const r of this.sorted()) {
      const v = r[i]!;
      if (v !== null && (max === null || compareValues(v, max) > 0)) max = v;
    }
    return Promise.resolve(max);
  }

  async beginWrite(options: { readonly create?: TableSchema } = {}): Promise<TableWriter> {
    const before = this.db.tables.get(this.table);
    if (options.create === undefined && before === undefined) {
      throw new TongbuError('NOT_FOUND', `${this.url}: no such table`);
    }
    const schema = options.create ?? before!.schema;
    const work: StoredTable = { schema, rows: new Map(options.create ? [] : before!.rows) };
    const idx = keyIndexes(schema);
    const db = this.db;
    const table = this.table;
    const put = (columns: readonly Column[], rows: readonly Row[]): void => {
      const pick = schema.columns.map((c) => columns.findIndex((x) => x.name === c.name));
      for (const row of rows) {
        const full = pick.map((i) => (i < 0 ? null : row[i]!));
        const id = keyId(rowKey(full, idx));
        const old = work.rows.get(id);
        work.rows.set(
          id,
          old === undefined ? full : pick.map((i, n) => (i < 0 ? old[n]! : full[n]!)),
        );
      }
    };
    return Promise.resolve({
      insert: async (columns, rows) => Promise.resolve(put(columns, rows)),
      upsert: async (columns, rows) => Promise.resolve(put(columns, rows)),
      delete: async (keys) => {
        for (const k of keys) work.rows.delete(keyId(k));
        return Promise.resolve();
      },
      commit: async () => {
        db.tables.set(table, work);
        return Promise.resolve();
      },
      rollback: async () => Promise.resolve(),
    });
  }

  async close(): Promise<void> {
    return Promise.resolve();
  }

  private requireSchema(): TableSchema {
    const s = this.schema;
    if (s === undefined) throw new TongbuError('SOURCE_NOT_FOUND', `${this.url}: no such table`);
    return s;
  }
}
