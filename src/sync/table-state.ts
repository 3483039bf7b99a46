/**
 * The saved state of a table pair, in the same SQLite file as the file
 * sync state (--state): the incremental cursor (column and high-water
 * value), the base rows of bidirectional sync (the last state both sides
 * agreed on, by key), and every conflict met, for listing later.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { fromSystemError, TongbuError } from '../core/errors.js';
import type { CanonicalValue, KeyTuple, Row } from '../endpoints/table/canonical.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS table_pairs (
  pair_key TEXT PRIMARY KEY,
  source TEXT NOT NULL,
  destination TEXT NOT NULL,
  cursor_column TEXT,
  cursor_value TEXT,
  schema_sig TEXT,
  last_run_ms INTEGER
);
CREATE TABLE IF NOT EXISTS table_base (
  pair_key TEXT NOT NULL,
  key TEXT NOT NULL,
  row TEXT NOT NULL,
  PRIMARY KEY (pair_key, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS table_conflicts (
  id INTEGER PRIMARY KEY,
  pair_key TEXT NOT NULL,
  at_ms INTEGER NOT NULL,
  key TEXT NOT NULL,
  source_row TEXT,
  dest_row TEXT,
  base_row TEXT,
  resolution TEXT NOT NULL
);
`;

export interface ConflictRecord {
  readonly atMs: number;
  readonly key: KeyTuple;
  readonly source: Row | null;
  readonly dest: Row | null;
  readonly base: Row | null;
  readonly resolution: string;
}

/** Canonical values as JSON: bigints as {"n":"…"}, blobs as {"b":"hex"}. */
export function encodeValues(values: readonly CanonicalValue[]): string {
  return JSON.stringify(values, (_k, v: unknown) =>
    typeof v === 'bigint'
      ? { n: v.toString() }
      : v instanceof Uint8Array
        ? { b: Buffer.from(v).toString('hex') }
        : v,
  );
}

export function decodeValues(text: string): CanonicalValue[] {
  const raw = JSON.parse(text) as unknown[];
  return raw.map((v) => {
    if (v !== null && typeof v === 'object') {
      const o = v as { n?: string; b?: string };
      if (o.n !== undefined) return BigInt(o.n);
      if (o.b !== undefined) return new Uint8Array(Buffer.from(o.b, 'hex'));
    }
    return v as CanonicalValue;
  });
}

export class TableSyncState {
  private constructor(
    private readonly db: Database.Database,
    private readonly pair: string,
    private readonly file: string,
  ) {}

  /** Opens (creating unless read-only) the state file and the pair's record. */
  static open(
    file: string,
    source: string,
    dest: string,
    options: { readOnly?: boolean } = {},
  ): TableSyncState {
    const pair = createHash('sha256').update(`table\0${source}\0${dest}`).digest('hex');
    try {
      let db: Database.Database;
      if (options.readOnly === true) {
        db = existsSync(file) ? new Database(file, { readonly: true }) : new Database(':memory:');
        if (!existsSync(file)) db.exec(SCHEMA);
      } else {
        mkdirSync(dirname(file), { recursive: true });
        db = new Database(file);
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        db.exec(SCHEMA);
        db.prepare(
          'INSERT INTO table_pairs (pair_key, source, destination) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
        ).run(pair, source, dest);
      }
      db.pragma('busy_timeout = 10000');
      // A state file from before table sync: read-only opens see no tables.
      const has = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'table_pairs'").get();
      if (has === undefined) db = withEmptySchema();
      return new TableSyncState(db, pair, file);
    } catch (err) {
      if (err instanceof TongbuError) throw err;
      throw fromSystemError(err, file, 'cannot open sync state');
    }
  }

  /** The cursor saved by the last successful run, if its column is `column`. */
  cursor(column: string): CanonicalValue | undefined {
    const row = this.db
      .prepare('SELECT cursor_column, cursor_value FROM table_pairs WHERE pair_key = ?')
      .get(this.pair) as { cursor_column: string | null; cursor_value: string | null } | undefined;
    if (row?.cursor_column !== column || row.cursor_value === null) return undefined;
    return decodeValues(row.cursor_value)[0];
  }

  setCursor(column: string | undefined, value: CanonicalValue | undefined): void {
    this.db
      .prepare(
        'UPDATE table_pairs SET cursor_column = ?, cursor_value = ?, last_run_ms = ? WHERE pair_key = ?',
      )
      .run(
        column ?? null,
        value === undefined ? null : encodeValues([value]),
        Date.now(),
        this.pair,
      );
  }

  /** Base rows by encoded key. */
  loadBase(): Map<string, Row> {
    const rows = this.db
      .prepare('SELECT key, row FROM table_base WHERE pair_key = ?')
      .raw()
      .all(this.pair) as [string, string][];
    return new Map(rows.map(([k, r]) => [k, decodeValues(r)]));
  }

  hasBase(): boolean {
    return (
      this.db.prepare('SELECT 1 FROM table_base WHERE pair_key = ? LIMIT 1').get(this.pair) !==
      undefined
    );
  }

  /** Replaces the base with `rows` (encoded key → row) in one transaction. */
  replaceBase(rows: Iterable<readonly [string, Row]>): void {
    const del = this.db.prepare('DELETE FROM table_base WHERE pair_key = ?');
    const ins = this.db.prepare('INSERT INTO table_base (pair_key, key, row) VALUES (?, ?, ?)');
    this.db.transaction(() => {
      del.run(this.pair);
      for (const [k, r] of rows) ins.run(this.pair, k, encodeValues(r));
    })();
  }

  recordConflicts(records: readonly ConflictRecord[]): void {
    const ins = this.db.prepare(
      `INSERT INTO table_conflicts (pair_key, at_ms, key, source_row, dest_row, base_row, resolution)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    const enc = (r: Row | null): string | null => (r === null ? null : encodeValues(r));
    this.db.transaction(() => {
      for (const c of records) {
        ins.run(
          this.pair,
          c.atMs,
          encodeValues(c.key),
          enc(c.source),
          enc(c.dest),
          enc(c.base),
          c.resolution,
        );
      }
    })();
  }

  conflicts(): ConflictRecord[] {
    const rows = this.db
      .prepare(
        'SELECT at_ms, key, source_row, dest_row, base_row, resolution FROM table_conflicts WHERE pair_key = ? ORDER BY id',
      )
      .raw()
      .all(this.pair) as [number, string, string | null, string | null, string | null, string][];
    const dec = (t: string | null): Row | null => (t === null ? null : decodeValues(t));
    return rows.map(([atMs, key, s, d, b, resolution]) => ({
      atMs,
      key: decodeValues(key),
      source: dec(s),
      dest: dec(d),
      base: dec(b),
      resolution,
    }));
  }

  get path(): string {
    return this.file;
  }

  close(): void {
    this.db.close();
  }
}

function withEmptySchema(): Database.Database {
  const db = new Database(':memory:');
  db.exec(SCHEMA);
  return db;
}
