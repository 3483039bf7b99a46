/**
 * The catalog on SQLite (WAL, busy timeout), the embedded default: node
 * processes of one machine share the file. A compare-and-swap is one
 * immediate transaction that also appends the move to `ref_log`, so every
 * process sees ref moves in one order, and `watchRefs` polls that log.
 * Heartbeats and leadership are rows with an expiry, renewed by timers every
 * third of the ttl; all timers are unref'd and stop on close.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { TongbuError, fromSystemError } from '../core/errors.js';
import type { ContentHash } from '../core/hash.js';
import type {
  ClusterCatalog,
  MemberRecord,
  MemberStatus,
  RefEvent,
  RefFeed,
  RefRecord,
  TokenRecord,
} from './catalog.js';

/** Ref moves kept for feeds to resume from; older ones are trimmed. */
const REF_LOG_ROWS = 100_000;
const POLL_MS = 100;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS refs (
  namespace TEXT NOT NULL,
  name TEXT NOT NULL,
  commit_hash TEXT NOT NULL,
  version INTEGER NOT NULL,
  PRIMARY KEY (namespace, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokens (
  id TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL UNIQUE,
  scopes TEXT NOT NULL,
  label TEXT NOT NULL,
  created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ref_log (
  rev INTEGER PRIMARY KEY AUTOINCREMENT,
  namespace TEXT NOT NULL,
  name TEXT NOT NULL,
  commit_hash TEXT
);
CREATE TABLE IF NOT EXISTS members (
  id TEXT PRIMARY KEY,
  record TEXT NOT NULL,
  expires_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
  role TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  campaign TEXT NOT NULL,
  expires_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`;

interface RefRow {
  namespace: string;
  name: string;
  commit_hash: string;
  version: number;
}

interface TokenRow {
  id: string;
  secret_hash: string;
  scopes: string;
  label: string;
  created_ms: number;
}

const toRef = (r: RefRow): RefRecord => ({
  namespace: r.namespace,
  name: r.name,
  commit: r.commit_hash as ContentHash,
  version: r.version,
});

const toToken = (r: TokenRow): TokenRecord => ({
  id: r.id,
  secretHash: r.secret_hash,
  scopes: JSON.parse(r.scopes) as string[],
  label: r.label,
  createdMs: r.created_ms,
});

interface LogRow {
  rev: number;
  namespace: string;
  name: string;
  commit_hash: string | null;
}

/** A timer that runs `fn` every `ms` without keeping the process alive; errors wait for the next run. */
function every(ms: number, fn: () => void): NodeJS.Timeout {
  const timer = setInterval(() => {
    try {
      fn();
    } catch {
      // SQLITE_BUSY past the busy timeout, or the like: the next run retries.
    }
  }, ms);
  timer.unref();
  return timer;
}

export class SqliteCatalog implements ClusterCatalog {
  private readonly db: Database.Database;
  /** Heartbeat timers of the members joined through this handle, by id. */
  private readonly heartbeats = new Map<string, NodeJS.Timeout>();
  /** Resign functions of campaigns and stop functions of feeds. */
  private readonly stoppers = new Set<() => Promise<void>>();

  private constructor(db: Database.Database) {
    this.db = db;
  }

  static open(file: string): SqliteCatalog {
    try {
      mkdirSync(dirname(file), { recursive: true });
      const db = new Database(file);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('busy_timeout = 10000');
      db.exec(SCHEMA);
      return new SqliteCatalog(db);
    } catch (err) {
      throw fromSystemError(err, file, 'cannot open catalog');
    }
  }

  getRef(namespace: string, name: string): Promise<RefRecord | undefined> {
    const row = this.db
      .prepare('SELECT * FROM refs WHERE namespace = ? AND name = ?')
      .get(namespace, name) as RefRow | undefined;
    return Promise.resolve(row ? toRef(row) : undefined);
  }

  compareAndSwapRef(
    namespace: string,
    name: string,
    expected: ContentHash | undefined,
    next: ContentHash | undefined,
  ): Promise<boolean> {
    const swap = this.db.transaction((): boolean => {
      const row = this.db
        .prepare('SELECT * FROM refs WHERE namespace = ? AND name = ?')
        .get(namespace, name) as RefRow | undefined;
      if ((row?.commit_hash ?? undefined) !== expected) return false;
      if (next === undefined) {
        this.db.prepare('DELETE FROM refs WHERE namespace = ? AND name = ?').run(namespace, name);
      } else {
        this.db
          .prepare(
            `INSERT INTO refs (namespace, name, commit_hash, version) VALUES (?, ?, ?, 1)
             ON CONFLICT (namespace, name) DO UPDATE SET commit_hash = excluded.commit_hash,
               version = refs.version + 1`,
          )
          .run(namespace, name, next);
      }
      const { lastInsertRowid } = this.db
        .prepare('INSERT INTO ref_log (namespace, name, commit_hash) VALUES (?, ?, ?)')
        .run(namespace, name, next ?? null);
      this.db
        .prepare('DELETE FROM ref_log WHERE rev <= ?')
        .run(Number(lastInsertRowid) - REF_LOG_ROWS);
      return true;
    });
    return Promise.resolve(swap.immediate());
  }

  listRefs(namespace: string, prefix = ''): Promise<RefRecord[]> {
    const rows = this.db
      .prepare('SELECT * FROM refs WHERE namespace = ? AND substr(name, 1, ?) = ? ORDER BY name')
      .all(namespace, prefix.length, prefix) as RefRow[];
    return Promise.resolve(rows.map(toRef));
  }

  listNamespaces(): Promise<string[]> {
    const rows = this.db
      .prepare('SELECT DISTINCT namespace FROM refs ORDER BY namespace')
      .all() as {
      namespace: string;
    }[];
    return Promise.resolve(rows.map((r) => r.namespace));
  }

  putToken(token: TokenRecord): Promise<void> {
    try {
      this.db
        .prepare(
          'INSERT INTO tokens (id, secret_hash, scopes, label, created_ms) VALUES (?, ?, ?, ?, ?)',
        )
        .run(
          token.id,
          token.secretHash,
          JSON.stringify(token.scopes),
          token.label,
          token.createdMs,
        );
    } catch (err) {
      if (!(err as { code?: string }).code?.startsWith('SQLITE_CONSTRAINT')) throw err;
      const conflict = new TongbuError(
        'CONFLICT',
        `token ${token.id} or its secret exists already`,
        {
          data: { id: token.id },
          cause: err,
        },
      );
      return Promise.reject(conflict);
    }
    return Promise.resolve();
  }

  findToken(secretHash: string): Promise<TokenRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM tokens WHERE secret_hash = ?').get(secretHash) as
      TokenRow | undefined;
    return Promise.resolve(row ? toToken(row) : undefined);
  }

  listTokens(): Promise<TokenRecord[]> {
    const rows = this.db
      .prepare('SELECT * FROM tokens ORDER BY created_ms, id')
      .all() as TokenRow[];
    return Promise.resolve(rows.map(toToken));
  }

  removeToken(id: string): Promise<boolean> {
    return Promise.resolve(this.db.prepare('DELETE FROM tokens WHERE id = ?').run(id).changes > 0);
  }

  join(member: MemberRecord, ttlMs: number): Promise<void> {
    const beat = (): void => {
      this.db
        .prepare('UPDATE members SET expires_ms = ? WHERE id = ?')
        .run(Date.now() + ttlMs, member.id);
    };
    this.db
      .prepare(
        `INSERT INTO members (id, record, expires_ms) VALUES (?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET record = excluded.record, expires_ms = excluded.expires_ms`,
      )
      .run(member.id, JSON.stringify(member), Date.now() + ttlMs);
    clearInterval(this.heartbeats.get(member.id));
    this.heartbeats.set(member.id, every(ttlMs / 3, beat));
    return Promise.resolve();
  }

  leave(id: string): Promise<void> {
    clearInterval(this.heartbeats.get(id));
    this.heartbeats.delete(id);
    this.db.prepare('UPDATE members SET expires_ms = 0 WHERE id = ?').run(id);
    return Promise.resolve();
  }

  members(): Promise<MemberStatus[]> {
    const now = Date.now();
    const rows = this.db.prepare('SELECT record, expires_ms FROM members ORDER BY id').all() as {
      record: string;
      expires_ms: number;
    }[];
    return Promise.resolve(
      rows.map((r) => ({ member: JSON.parse(r.record) as MemberRecord, live: r.expires_ms > now })),
    );
  }

  removeMember(id: string): Promise<boolean> {
    clearInterval(this.heartbeats.get(id));
    this.heartbeats.delete(id);
    return Promise.resolve(this.db.prepare('DELETE FROM members WHERE id = ?').run(id).changes > 0);
  }

  /**
   * Every third of the ttl, takes the lease of `role` when it is free or
   * expired, or renews it when this campaign holds it; a renewal that finds
   * another holder, or none succeeding for a ttl, ends the leadership.
   */
  campaign(
    role: string,
    id: string,
    ttlMs: number,
    onChange: (leading: boolean) => void,
  ): Promise<() => Promise<void>> {
    const campaign = randomUUID();
    let leading = false;
    const hold = this.db.transaction((): boolean => {
      const now = Date.now();
      const row = this.db
        .prepare('SELECT campaign, expires_ms FROM leases WHERE role = ?')
        .get(role) as { campaign: string; expires_ms: number } | undefined;
      if (row && row.campaign !== campaign && row.expires_ms > now) return false;
      this.db
        .prepare(
          `INSERT INTO leases (role, holder, campaign, expires_ms) VALUES (?, ?, ?, ?)
           ON CONFLICT (role) DO UPDATE SET holder = excluded.holder,
             campaign = excluded.campaign, expires_ms = excluded.expires_ms`,
        )
        .run(role, id, campaign, now + ttlMs);
      return true;
    });
    let heldUntil = 0;
    const tick = (): void => {
      let held: boolean;
      try {
        held = hold.immediate();
        if (held) heldUntil = Date.now() + ttlMs;
      } catch {
        // The file stayed locked past the busy timeout: the lease lasts its ttl.
        held = leading && Date.now() < heldUntil;
      }
      if (held !== leading) {
        leading = held;
        onChange(held);
      }
    };
    tick();
    const timer = every(ttlMs / 3, tick);
    const resign = (): Promise<void> => {
      this.stoppers.delete(resign);
      clearInterval(timer);
      if (leading) {
        this.db.prepare('DELETE FROM leases WHERE role = ? AND campaign = ?').run(role, campaign);
        leading = false;
        onChange(false);
      }
      return Promise.resolve();
    };
    this.stoppers.add(resign);
    return Promise.resolve(resign);
  }

  leader(role: string): Promise<string | undefined> {
    const row = this.db
      .prepare('SELECT holder FROM leases WHERE role = ? AND expires_ms > ?')
      .get(role, Date.now()) as { holder: string } | undefined;
    return Promise.resolve(row?.holder);
  }

  /**
   * Polls `ref_log` every 100 ms. A gap between the last revision delivered
   * and the oldest row kept means trimmed history: a reset to the newest.
   */
  watchRefs(
    afterRevision: number | undefined,
    onEvent: (event: RefEvent) => void,
    onReset: (revision: number) => void,
  ): Promise<RefFeed> {
    let cursor = afterRevision ?? this.currentRevision();
    const read = this.db.transaction(() => ({
      rows: this.db
        .prepare('SELECT * FROM ref_log WHERE rev > ? ORDER BY rev LIMIT 1000')
        .all(cursor) as LogRow[],
      revision: this.currentRevision(),
    }));
    let stopped = false;
    const timer = every(POLL_MS, () => {
      const { rows, revision } = read();
      const first = rows[0]?.rev ?? revision + 1;
      if (first > cursor + 1 && revision > cursor) {
        cursor = revision;
        onReset(revision);
        return;
      }
      for (const r of rows) {
        if (stopped) return;
        cursor = r.rev;
        onEvent({
          revision: r.rev,
          namespace: r.namespace,
          name: r.name,
          commit: (r.commit_hash ?? undefined) as ContentHash | undefined,
        });
      }
    });
    const stop = (): Promise<void> => {
      this.stoppers.delete(stop);
      stopped = true;
      clearInterval(timer);
      return Promise.resolve();
    };
    this.stoppers.add(stop);
    return Promise.resolve({ stop });
  }

  /** The revision of the last ref move (0 before the first). */
  revision(): Promise<number> {
    return Promise.resolve(this.currentRevision());
  }

  /** Drops all but the newest `keepRows` ref moves; feeds resuming from before them are reset. */
  trimRefLog(keepRows = REF_LOG_ROWS): void {
    this.db.prepare('DELETE FROM ref_log WHERE rev <= ?').run(this.currentRevision() - keepRows);
  }

  getSetting(key: string): Promise<string | undefined> {
    const row = this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as
      { value: string } | undefined;
    return Promise.resolve(row?.value);
  }

  putSetting(key: string, value: string | undefined): Promise<void> {
    if (value === undefined) this.db.prepare('DELETE FROM settings WHERE key = ?').run(key);
    else {
      this.db
        .prepare(
          'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        )
        .run(key, value);
    }
    return Promise.resolve();
  }

  /** Stops feeds, resigns, and takes the members joined here down at once (still members). */
  async close(): Promise<void> {
    if (!this.db.open) return;
    await Promise.all([...this.stoppers].map((stop) => stop()));
    for (const id of [...this.heartbeats.keys()]) await this.leave(id);
    this.db.close();
  }

  private currentRevision(): number {
    const row = this.db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'ref_log'").get() as
      { seq: number } | undefined;
    return row?.seq ?? 0;
  }
}
