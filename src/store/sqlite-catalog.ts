/**
 * The catalog on SQLite (WAL, busy timeout), the embedded default. A
 * compare-and-swap is one immediate transaction, so node processes sharing
 * the file see ref moves in one order.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { fromSystemError } from '../core/errors.js';
import type { ContentHash } from '../core/hash.js';
import type { Catalog, RefRecord, TokenRecord } from './catalog.js';

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

export class SqliteCatalog implements Catalog {
  private readonly db: Database.Database;

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
    this.db
      .prepare(
        'INSERT INTO tokens (id, secret_hash, scopes, label, created_ms) VALUES (?, ?, ?, ?, ?)',
      )
      .run(token.id, token.secretHash, JSON.stringify(token.scopes), token.label, token.createdMs);
    return Promise.resolve();
  }

  findToken(secretHash: string): Promise<TokenRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM tokens WHERE secret_hash = ?').get(secretHash) as
      TokenRow | undefined;
    return Promise.resolve(row ? toToken(row) : undefined);
  }

  listTokens(): Promise<TokenRecord[]> {
    const rows = this.db.prepare('SELECT * FROM tokens ORDER BY created_ms').all() as TokenRow[];
    return Promise.resolve(rows.map(toToken));
  }

  removeToken(id: string): Promise<boolean> {
    return Promise.resolve(this.db.prepare('DELETE FROM tokens WHERE id = ?').run(id).changes > 0);
  }

  close(): Promise<void> {
    this.db.close();
    return Promise.resolve();
  }
}
