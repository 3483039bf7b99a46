/**
 * A table in a SQLite database file (`sqlite:./runs.db?table=runs`).
 *
 * Reads go through one read-only connection, opened only when the file
 * exists: opening never creates a file. A write (`beginWrite`) opens its own
 * read-write connection and holds BEGIN IMMEDIATE until commit or rollback.
 * The database is put in WAL mode (kept by the file), so reads on this
 * endpoint and on others go on during a write and see the last commit; a
 * file that `beginWrite({ create })` makes is written in rollback-journal
 * mode (its pages land once, with no WAL checkpoint) and switched to WAL at
 * commit. The table is created inside the transaction: a rollback leaves no
 * table, and removes a file it created that holds nothing else.
 *
 * Types: see sqlite-types.ts (declared types) and sqlite-values.ts (storage).
 * Checksums are computed in JS over the rows read (SQLite has no md5).
 */
import { accessSync, constants, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { fromSystemError, TongbuError } from '../../core/errors.js';
import type {
  CanonicalValue,
  KeyRange,
  KeyTuple,
  Row,
  SegmentChecksum,
} from '../table/canonical.js';
import type { ScanOptions, TableEndpoint, TableWriter } from '../table/table-endpoint.js';
import type { Column, TableSchema } from '../table/table-schema.js';
import type { TableUrl } from '../table/table-url.js';
import { sqliteError } from './sqlite-errors.js';
import { SqliteReader } from './sqlite-reader.js';
import { readTableInfo } from './sqlite-table-info.js';
import { createTableSql } from './sqlite-types.js';
import { SqliteWriter } from './sqlite-writer.js';

const BUSY_TIMEOUT_MS = 10_000;
/** Page cache of a write connection (KiB): big inserts stay off the disk until commit. */
const WRITE_CACHE_KIB = 65_536;

export class SqliteTable implements TableEndpoint {
  readonly engine = 'sqlite' as const;
  readonly url: string;
  readonly table: string;
  /** The database file, absolute. */
  readonly path: string;
  private db: Database.Database | undefined;
  private reader: SqliteReader | undefined;
  private writer: SqliteWriter | undefined;

  constructor(private readonly spec: TableUrl) {
    if (spec.path === undefined)
      throw new TongbuError('BAD_URL', `${spec.display}: no database file`);
    this.url = spec.display;
    this.table = spec.table;
    this.path = resolve(spec.path);
  }

  get schema(): TableSchema | undefined {
    return this.reader?.info.schema;
  }

  async open(): Promise<void> {
    this.closeReader();
    this.load();
    return Promise.resolve();
  }

  async *scan(options?: ScanOptions): AsyncIterable<Row[]> {
    yield* this.read().scan(options);
  }

  async *scanKeys(options?: Omit<ScanOptions, 'since'>): AsyncIterable<KeyTuple[]> {
    yield* this.read().scanKeys(options);
  }

  async fetch(keys: readonly KeyTuple[]): Promise<Row[]> {
    return Promise.resolve(this.read().fetch(keys));
  }

  async count(range?: KeyRange): Promise<number> {
    return Promise.resolve(this.read().count(range));
  }

  async keysIn(ranges: readonly KeyRange[]): Promise<KeyTuple[]> {
    return Promise.resolve(this.read().keysIn(ranges));
  }

  async keyBuckets(width: bigint): Promise<Map<bigint, SegmentChecksum>> {
    return Promise.resolve(this.read().keyBuckets(width));
  }

  async keySums(ranges: readonly KeyRange[]): Promise<SegmentChecksum[]> {
    return Promise.resolve(ranges.map((range) => this.read().keySum(range)));
  }

  async splitPoints(parts: number, range?: KeyRange): Promise<KeyTuple[]> {
    return Promise.resolve(this.read().split(parts, range));
  }

  async checksums(
    columns: readonly Column[],
    ranges: readonly KeyRange[],
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<SegmentChecksum[]> {
    return this.read().checksums(columns, ranges, options.signal);
  }

  async maxValue(column: string): Promise<CanonicalValue> {
    return Promise.resolve(this.read().maxValue(column));
  }

  async beginWrite(options: { readonly create?: TableSchema } = {}): Promise<TableWriter> {
    return Promise.resolve(this.startWrite(options.create));
  }

  private startWrite(create: TableSchema | undefined): SqliteWriter {
    if (this.writer !== undefined) {
      throw new TongbuError(
        'INTERNAL',
        `${this.url}: a write transaction is already open on this endpoint`,
      );
    }
    const existed = existsSync(this.path);
    if (!existed && create === undefined) {
      throw new TongbuError(
        'NOT_FOUND',
        `${this.url}: no table "${this.table}" (${this.path} does not exist)`,
        {
          data: { path: this.path, table: this.table },
        },
      );
    }
    if (!existed) {
      try {
        mkdirSync(dirname(this.path), { recursive: true });
      } catch (err) {
        throw fromSystemError(err, dirname(this.path), 'create directory');
      }
    }
    let db: Database.Database;
    try {
      db = new Database(this.path, { timeout: BUSY_TIMEOUT_MS });
    } catch (err) {
      throw openError(err, this.path, this.url, true);
    }
    try {
      // A new file is written in rollback-journal mode, so its pages are
      // written once (no WAL copy and checkpoint), and switched to WAL at commit.
      if (existed) toWal(db);
      db.pragma(`cache_size = -${WRITE_CACHE_KIB}`);
      db.exec('BEGIN IMMEDIATE');
      const exists = db
        .prepare(
          "SELECT 1 FROM pragma_table_list WHERE schema = 'main' AND name = ? COLLATE NOCASE",
        )
        .get(this.table);
      if (create !== undefined) {
        if (exists !== undefined) {
          throw new TongbuError(
            'BAD_ARGUMENT',
            `${this.url}: table "${this.table}" exists already`,
            {
              data: { table: this.table },
            },
          );
        }
        db.exec(createTableSql(this.table, create));
      } else if (exists === undefined) {
        throw new TongbuError(
          'NOT_FOUND',
          `${this.url}: no table "${this.table}" in ${this.path}`,
          {
            data: { path: this.path, table: this.table },
          },
        );
      }
      const info = readTableInfo(
        db,
        this.table,
        create === undefined ? this.spec.key : undefined,
        this.url,
      )!;
      const writer = new SqliteWriter(
        db,
        info,
        this.url,
        (committed) => {
          this.writer = undefined;
          this.writeEnded(committed, create !== undefined, existed);
        },
        existed ? undefined : toWal,
      );
      this.writer = writer;
      return writer;
    } catch (err) {
      try {
        if (db.inTransaction) db.exec('ROLLBACK');
      } finally {
        db.close();
      }
      if (!existed) removeIfEmpty(this.path);
      throw sqliteError(err, this.url);
    }
  }

  async close(): Promise<void> {
    if (this.writer !== undefined) await this.writer.rollback();
    this.closeReader();
  }

  /** Opens the read connection (when the file exists) and reads the table. */
  private load(): void {
    if (this.db === undefined) {
      const db = openReadOnly(this.path, this.url);
      if (db === undefined) return;
      this.db = db;
    }
    try {
      const info = readTableInfo(this.db, this.table, this.spec.key, this.url);
      if (info !== undefined && this.spec.where !== undefined)
        checkWhere(this.db, info.quoted, this.spec.where, this.url);
      this.reader =
        info === undefined ? undefined : new SqliteReader(this.db, info, this.url, this.spec.where);
    } catch (err) {
      this.closeReader();
      if ((err as { code?: unknown }).code === 'SQLITE_NOTADB') {
        throw new TongbuError(
          'BAD_ARGUMENT',
          `${this.url}: ${this.path} is not a SQLite database`,
          {
            data: { path: this.path },
            cause: err,
          },
        );
      }
      throw sqliteError(err, this.url);
    }
  }

  private writeEnded(committed: boolean, created: boolean, existed: boolean): void {
    if (committed && created) {
      // The new table becomes this endpoint's schema. The write is committed
      // whatever happens here; a failure to read it shows at the next open().
      try {
        this.reader = undefined;
        this.load();
      } catch {
        this.closeReader();
      }
    } else if (!committed && !existed) {
      removeIfEmpty(this.path);
    }
  }

  private closeReader(): void {
    this.reader = undefined;
    this.db?.close();
    this.db = undefined;
  }

  private read(): SqliteReader {
    if (this.reader === undefined) {
      throw new TongbuError(
        'SOURCE_NOT_FOUND',
        `${this.url}: no table "${this.table}" in ${this.path}`,
        {
          data: { path: this.path, table: this.table },
        },
      );
    }
    return this.reader;
  }
}

/** A read-only connection, or undefined when the file does not exist. */
function openReadOnly(path: string, url: string): Database.Database | undefined {
  try {
    if (statSync(path).isDirectory()) {
      throw new TongbuError(
        'BAD_ARGUMENT',
        `${url}: ${path} is a directory, not a SQLite database`,
        {
          data: { path },
        },
      );
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fromSystemError(err, path, 'open');
  }
  try {
    return new Database(path, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
  } catch (err) {
    throw openError(err, path, url, false);
  }
}

/**
 * WAL lets reads (this endpoint's and others') go on during a write and see
 * the last commit. The mode is kept by the file.
 */
function toWal(db: Database.Database): void {
  try {
    db.pragma('journal_mode = WAL');
  } catch {
    // Another connection holds the database: keep its journal mode.
  }
}

/** An open that failed: a permission problem names the path, the rest maps by SQLite code. */
function openError(err: unknown, path: string, url: string, write: boolean): TongbuError {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('SQLITE_CANTOPEN')) {
    const target = existsSync(path) ? path : dirname(path);
    try {
      accessSync(target, write ? constants.R_OK | constants.W_OK : constants.R_OK);
    } catch (access) {
      return fromSystemError(access, target, 'open');
    }
  }
  return sqliteError(err, `${url} (${path})`);
}

function checkWhere(db: Database.Database, table: string, where: string, url: string): void {
  try {
    db.prepare(`SELECT 1 FROM ${table} WHERE (${where}) LIMIT 0`);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new TongbuError('BAD_ARGUMENT', `${url}: where=${where}: ${why}`, {
      data: { where },
      cause: err,
    });
  }
}

/** Removes a database file (and its -wal, -shm, -journal) that holds no table, view or index. */
function removeIfEmpty(path: string): void {
  let empty = false;
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      empty = db.prepare('SELECT count(*) FROM sqlite_schema').pluck().get() === 0;
    } finally {
      db.close();
    }
  } catch {
    return; // not ours to judge
  }
  if (!empty) return;
  for (const suffix of ['', '-wal', '-shm', '-journal'])
    rmSync(`${path}${suffix}`, { force: true });
}
