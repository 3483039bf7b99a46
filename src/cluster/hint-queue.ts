/**
 * The durable hint queue of a node: "replica N still needs chunk H". A write
 * that could not reach a replica (down, cut off, too slow for its mode) leaves
 * the chunk in this node's store and a hint here; the drainer pushes it when
 * the replica is back. Kept in SQLite beside the chunk store, so hints
 * survive a crash of the node that holds them. The queue's length is the
 * replication lag.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { fromSystemError } from '../core/errors.js';
import { addressOfDigest, storeDigestHex, type ContentHash } from '../core/hash.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS hints (
  node TEXT NOT NULL,
  hash BLOB NOT NULL,
  added_ms INTEGER NOT NULL,
  PRIMARY KEY (node, hash)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS hints_by_hash ON hints (hash);
CREATE TABLE IF NOT EXISTS repair_state (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`;

const toBlob = (hash: ContentHash): Buffer => Buffer.from(storeDigestHex(hash), 'hex');
const toHash = (blob: Buffer): ContentHash => addressOfDigest(blob);

export class HintQueue {
  private readonly db: Database.Database;

  private constructor(db: Database.Database) {
    this.db = db;
  }

  static open(dataDir: string): HintQueue {
    const file = join(dataDir, 'hints.db');
    try {
      const db = new Database(file);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('busy_timeout = 10000');
      db.exec(SCHEMA);
      return new HintQueue(db);
    } catch (err) {
      throw fromSystemError(err, file, 'cannot open hint queue');
    }
  }

  /** Records that `node` needs each of `hashes`; durable when this returns. */
  add(node: string, hashes: readonly ContentHash[]): void {
    if (hashes.length === 0) return;
    const insert = this.db.prepare(
      'INSERT OR IGNORE INTO hints (node, hash, added_ms) VALUES (?, ?, ?)',
    );
    const now = Date.now();
    this.db.transaction(() => {
      for (const h of hashes) insert.run(node, toBlob(h), now);
    })();
  }

  /** Up to `limit` hashes `node` needs, oldest first. */
  take(node: string, limit: number): ContentHash[] {
    const rows = this.db
      .prepare('SELECT hash FROM hints WHERE node = ? ORDER BY added_ms LIMIT ?')
      .all(node, limit) as { hash: Buffer }[];
    return rows.map((r) => toHash(r.hash));
  }

  remove(node: string, hashes: readonly ContentHash[]): void {
    const del = this.db.prepare('DELETE FROM hints WHERE node = ? AND hash = ?');
    this.db.transaction(() => {
      for (const h of hashes) del.run(node, toBlob(h));
    })();
  }

  /** Some node still waits for `hash` from here. */
  queued(hash: ContentHash): boolean {
    return (
      this.db.prepare('SELECT 1 FROM hints WHERE hash = ? LIMIT 1').get(toBlob(hash)) !== undefined
    );
  }

  /** Drops every hint for `node` (it was removed from the cluster). */
  forget(node: string): number {
    return this.db.prepare('DELETE FROM hints WHERE node = ?').run(node).changes;
  }

  /** Hints queued, per target node. */
  counts(): Map<string, number> {
    const rows = this.db.prepare('SELECT node, count(*) AS n FROM hints GROUP BY node').all() as {
      node: string;
      n: number;
    }[];
    return new Map(rows.map((r) => [r.node, r.n]));
  }

  total(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM hints').get() as { n: number }).n;
  }

  /** Small named values that must survive a restart (the repair cursor). */
  getState(name: string): string | undefined {
    const row = this.db.prepare('SELECT value FROM repair_state WHERE name = ?').get(name) as
      { value: string } | undefined;
    return row?.value;
  }

  setState(name: string, value: string | undefined): void {
    if (value === undefined) this.db.prepare('DELETE FROM repair_state WHERE name = ?').run(name);
    else
      this.db
        .prepare('INSERT OR REPLACE INTO repair_state (name, value) VALUES (?, ?)')
        .run(name, value);
  }

  close(): void {
    this.db.close();
  }
}
