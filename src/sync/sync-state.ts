/**
 * The saved state of a source/destination pair: for every entry last synced,
 * what it was (kind, size, mode, hash, link target) and the mtimes both sides
 * showed. It is the quick-check memory of incremental sync and, being the
 * last common state, the base of a later three-way (bidirectional) compare.
 * Kept in SQLite (better-sqlite3), one file for all pairs.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { fromSystemError, TongbuError } from '../core/errors.js';
import type { ContentHash } from '../core/hash.js';
import type { Key } from '../core/key.js';
import type { EntryKind } from '../endpoints/endpoint.js';

export interface StateRow {
  readonly key: Key;
  readonly kind: EntryKind;
  readonly size: number;
  readonly mode: number;
  readonly hash: ContentHash | null;
  readonly target: string | null;
  readonly srcMtimeMs: number;
  readonly dstMtimeMs: number;
}

type RawRow = [Key, EntryKind, number, number, string | null, string | null, number, number];

/** Changes are written in transactions of this many. */
const BATCH = 4096;

/**
 * Changes recorded and not yet written (at most BATCH), column by column.
 * A batch outlives the young-generation collections of a large run; kept
 * as columns it holds no object per row, so the rows handed to `put` die
 * young instead of filling the old generation (or teaching V8 to allocate
 * them there). The numbers go to one buffer, reused batch after batch.
 */
class PendingChanges {
  keys: Key[] = [];
  /** A row's kind, or null for a key to forget. */
  kinds: (EntryKind | null)[] = [];
  hashes: (ContentHash | null)[] = [];
  targets: (string | null)[] = [];
  /** size, mode, srcMtimeMs and dstMtimeMs of change i, at 4i to 4i + 3. */
  readonly nums = new Float64Array(4 * BATCH);

  clear(): void {
    this.keys = [];
    this.kinds = [];
    this.hashes = [];
    this.targets = [];
  }

  get length(): number {
    return this.keys.length;
  }

  put(row: StateRow): void {
    const at = 4 * this.keys.length;
    this.nums[at] = row.size;
    this.nums[at + 1] = row.mode;
    this.nums[at + 2] = row.srcMtimeMs;
    this.nums[at + 3] = row.dstMtimeMs;
    this.keys.push(row.key);
    this.kinds.push(row.kind);
    this.hashes.push(row.hash);
    this.targets.push(row.target);
  }

  forget(key: Key): void {
    this.keys.push(key);
    this.kinds.push(null);
    this.hashes.push(null);
    this.targets.push(null);
  }
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS pairs (
  id INTEGER PRIMARY KEY,
  pair_key TEXT NOT NULL UNIQUE,
  source TEXT NOT NULL,
  destination TEXT NOT NULL,
  last_run_ms INTEGER
);
CREATE TABLE IF NOT EXISTS entries (
  pair INTEGER NOT NULL,
  key TEXT NOT NULL,
  kind TEXT NOT NULL,
  size INTEGER NOT NULL,
  mode INTEGER NOT NULL,
  hash TEXT,
  target TEXT,
  src_mtime REAL NOT NULL,
  dst_mtime REAL NOT NULL,
  PRIMARY KEY (pair, key)
) WITHOUT ROWID;
`;

export class SyncState {
  private readonly db: Database.Database;
  private readonly pairId: number;
  private readonly upsert: Database.Statement;
  private readonly del: Database.Statement;
  private readonly getOne: Database.Statement;
  private readonly pending = new PendingChanges();
  /** Rows were written since the state was opened. */
  private changed = false;

  private constructor(db: Database.Database, source: string, destination: string) {
    this.db = db;
    const pairKey = createHash('sha256').update(`${source}\0${destination}`).digest('hex');
    if (!db.readonly) {
      db.prepare(
        'INSERT INTO pairs (pair_key, source, destination) VALUES (?, ?, ?) ON CONFLICT (pair_key) DO NOTHING',
      ).run(pairKey, source, destination);
    }
    const row = db.prepare('SELECT id FROM pairs WHERE pair_key = ?').get(pairKey) as
      { id: number } | undefined;
    this.pairId = row?.id ?? -1;
    this.upsert = db.prepare(
      `INSERT INTO entries (pair, key, kind, size, mode, hash, target, src_mtime, dst_mtime)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (pair, key) DO UPDATE SET kind = excluded.kind, size = excluded.size,
         mode = excluded.mode, hash = excluded.hash, target = excluded.target,
         src_mtime = excluded.src_mtime, dst_mtime = excluded.dst_mtime`,
    );
    this.del = db.prepare('DELETE FROM entries WHERE pair = ? AND key = ?');
    this.getOne = db
      .prepare(
        'SELECT key, kind, size, mode, hash, target, src_mtime, dst_mtime FROM entries WHERE pair = ? AND key = ?',
      )
      .raw();
  }

  /**
   * Opens (creating) the state file and the pair's record. Read-only (for
   * --dry-run) creates nothing: a missing file reads as an empty state.
   */
  static open(
    file: string,
    source: string,
    destination: string,
    options: { readOnly?: boolean } = {},
  ): SyncState {
    try {
      let db: Database.Database;
      if (options.readOnly) {
        db = existsSync(file) ? new Database(file, { readonly: true }) : new Database(':memory:');
        if (!existsSync(file)) db.exec(SCHEMA);
      } else {
        mkdirSync(dirname(file), { recursive: true });
        db = new Database(file);
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        db.exec(SCHEMA);
      }
      db.pragma('busy_timeout = 10000');
      // better-sqlite3 builds SQLite with a 16 MB page cache, which a large
      // run fills. Rows go in by batch and come out by key: SQLite's own
      // default of 2 MB writes 200,000 rows as fast.
      db.pragma('cache_size = -2000');
      return new SyncState(db, source, destination);
    } catch (err) {
      throw stateError(err, file);
    }
  }

  /** The row of one key, or undefined. */
  get(key: Key): StateRow | undefined {
    const raw = this.getOne.get(this.pairId, key) as RawRow | undefined;
    return raw === undefined ? undefined : rowOf(raw);
  }

  /** Every row of the pair, by key (the base of a three-way compare). */
  load(): Map<Key, StateRow> {
    const rows = this.db
      .prepare(
        'SELECT key, kind, size, mode, hash, target, src_mtime, dst_mtime FROM entries WHERE pair = ?',
      )
      .raw()
      .all(this.pairId) as RawRow[];
    return new Map(rows.map((raw) => [raw[0], rowOf(raw)]));
  }

  /** Records an entry as synced; written in batches. */
  put(row: StateRow): void {
    this.pending.put(row);
    if (this.pending.length >= BATCH) this.commit();
  }

  /** Forgets an entry (deleted, or no longer known to be in sync). */
  forget(key: Key): void {
    this.pending.forget(key);
    if (this.pending.length >= BATCH) this.commit();
  }

  /** Writes pending changes in one transaction. */
  commit(): void {
    if (this.pending.length === 0) return;
    const { keys, kinds, hashes, targets, nums } = this.pending;
    this.changed = true;
    try {
      this.db.transaction(() => {
        keys.forEach((key, i) => {
          const kind = kinds[i] ?? null;
          if (kind === null) this.del.run(this.pairId, key);
          else {
            const at = 4 * i;
            this.upsert.run(
              this.pairId,
              key,
              kind,
              nums[at],
              nums[at + 1],
              hashes[i],
              targets[i],
              nums[at + 2],
              nums[at + 3],
            );
          }
        });
      })();
    } finally {
      this.pending.clear();
    }
  }

  /**
   * Ends a run: notes when (last_run_ms) if it changed rows. A run that
   * found everything in sync writes nothing, so the state file sees no WAL
   * frame and no fsync.
   */
  finishRun(): void {
    this.commit();
    if (!this.changed) return;
    this.db.prepare('UPDATE pairs SET last_run_ms = ? WHERE id = ?').run(Date.now(), this.pairId);
  }

  close(): void {
    this.commit();
    this.db.close();
  }
}

function stateError(err: unknown, file: string): TongbuError {
  const errno = (err as NodeJS.ErrnoException).code;
  if (
    errno === 'ENOTDIR' ||
    errno === 'EISDIR' ||
    errno === 'SQLITE_CANTOPEN' ||
    errno === 'SQLITE_NOTADB'
  ) {
    return new TongbuError(
      'BAD_ARGUMENT',
      `--state ${file}: cannot use it as a sync state file (${errno})`,
      {
        data: { path: file },
        cause: err,
      },
    );
  }
  return fromSystemError(err, file, 'cannot open sync state');
}

function rowOf([key, kind, size, mode, hash, target, srcMtimeMs, dstMtimeMs]: RawRow): StateRow {
  return {
    key,
    kind,
    size,
    mode,
    hash: hash as ContentHash | null,
    target,
    srcMtimeMs,
    dstMtimeMs,
  };
}
