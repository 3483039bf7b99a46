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
  private pending: (StateRow | Key)[] = [];
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
    this.pending.push(row);
    if (this.pending.length >= 4096) this.commit();
  }

  /** Forgets an entry (deleted, or no longer known to be in sync). */
  forget(key: Key): void {
    this.pending.push(key);
    if (this.pending.length >= 4096) this.commit();
  }

  /** Writes pending changes in one transaction. */
  commit(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.changed = true;
    this.db.transaction(() => {
      for (const item of batch) {
        if (typeof item === 'string') this.del.run(this.pairId, item);
        else {
          this.upsert.run(
            this.pairId,
            item.key,
            item.kind,
            item.size,
            item.mode,
            item.hash,
            item.target,
            item.srcMtimeMs,
            item.dstMtimeMs,
          );
        }
      }
    })();
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
