/**
 * A chunk store of pack files: every chunk and object is appended to
 * `packs/pack-<n>.dat` and found through an index in SQLite
 * (`packs/index.db`, WAL): one row per object with its pack, offset, length,
 * the time it was last written or touched, and a write sequence number.
 * Appending costs one pwrite instead of a file create, rename and directory
 * entries, which is what bounds FileChunkStore on small chunks.
 *
 * Touches (a `missing` answer that a chunk is present, a write of a present
 * chunk) are appended to `touch_log` rather than rewriting the object's row:
 * a batch of scattered keys would otherwise dirty a page of the index per
 * key. `entries()` and a gc's `remove` fold the log into the rows first.
 *
 * A chunk is visible once its index row exists, and the row is written after
 * the bytes, so it is visible whole or not at all. Rows are batched: they wait
 * in memory (where lookups see them) and are committed every FLUSH_ROWS
 * operations, FLUSH_AFTER_MS after the first waiting one (a timer that keeps
 * the process alive until then, so a process that ends without `close()`
 * loses nothing), by `sync()` and by `close()`. A killed process loses the
 * rows of its last second; their bytes stay in the pack as dead space.
 *
 * Durability is batched as in FileChunkStore: `sync()` fdatasyncs every pack
 * written since the last sync, then commits the index with the highest
 * sequence number now durable. Index commits do not fsync (WAL with
 * `synchronous = NORMAL`, so rows and touches cost no disk flush on the event
 * loop); `sync()` makes its commit durable by an fdatasync of the WAL file on
 * the thread pool, which covers every commit before it. After an unclean stop `recover()` re-hashes the
 * objects written after it and drops the damaged ones; opening drops rows that
 * point past the end of their pack.
 *
 * Each writing process appends to a pack it claims (a new number, created
 * with O_EXCL), so two processes never interleave bytes in one file; no lock
 * is held. Removed objects leave dead bytes that `compact()` reclaims.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { fromSystemError, isTongbuError, toTongbuError, TongbuError } from '../core/errors.js';
import { addressOfDigest, storeAddress, storeDigestHex, type ContentHash } from '../core/hash.js';
import {
  checkObjectBytes,
  MAX_OBJECT_BYTES,
  type ChunkStore,
  type ChunkStoreStats,
  type StoredObject,
} from './chunk-store.js';

/** A pack takes no more appends once the next object would take it past this size. */
export const DEFAULT_PACK_BYTES = 1024 ** 3;
const FLUSH_ROWS = 1000;
/** Touches logged by this process before it folds the log into the index rows. */
const FOLD_ROWS = 1_000_000;
const FLUSH_AFTER_MS = 1000;
/** Bytes appended to a pack between two early (background) fdatasyncs of it. */
const EARLY_SYNC_BYTES = 64 * 1024 * 1024;
const PAGE_ROWS = 1000;
const MAX_READ_FDS = 64;
const COMPACT_YIELD_BYTES = 8 * 1024 * 1024;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS objects (
  hash BLOB PRIMARY KEY,
  pack INTEGER NOT NULL,
  "offset" INTEGER NOT NULL,
  length INTEGER NOT NULL,
  touched_ms INTEGER NOT NULL,
  seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_by_location ON objects (pack, "offset");
CREATE INDEX IF NOT EXISTS objects_by_seq ON objects (seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS touch_log (ms INTEGER NOT NULL, hash BLOB NOT NULL);
`;

export interface PackChunkStoreOptions {
  /** Pack size limit in bytes (default 1 GiB). */
  readonly packBytes?: number;
}

export interface CompactOptions {
  /** Packs whose live bytes / file size fall below this are rewritten (default 0.5). */
  readonly minLiveRatio?: number;
  /**
   * Packs modified within this many ms are left alone, since another process
   * may still append to one (default 60 000). Compaction is meant for a store
   * no other process writes to, as gc is.
   */
  readonly quietMs?: number;
}

export interface CompactReport {
  readonly packsRewritten: number;
  /** Pack bytes freed: the rewritten packs' sizes less the live bytes copied out. */
  readonly bytesReclaimed: number;
  /** Objects found damaged while copying; their rows are dropped. */
  readonly damaged: ContentHash[];
}

interface Location {
  readonly pack: number;
  readonly offset: number;
  readonly length: number;
}

interface Row extends Location {
  touchedMs: number;
  readonly seq: number;
}

interface IndexRow extends Location {
  readonly hash: Buffer;
}

const fdatasync = promisify(fs.fdatasync);
const fsOpen = promisify(fs.open);
const fsClose = promisify(fs.close);
const toKey = (hash: ContentHash): Buffer => Buffer.from(storeDigestHex(hash), 'hex');
const toHash = (key: Buffer): ContentHash => addressOfDigest(key);
const packName = (n: number): string => `pack-${String(n).padStart(8, '0')}.dat`;

/** The pack this process appends to. */
interface Writer {
  readonly pack: number;
  readonly fd: number;
  end: number;
  /** Bytes appended since the last sync or early fdatasync. */
  unsynced: number;
}

export class PackChunkStore implements ChunkStore {
  readonly dir: string;
  private readonly packsDir: string;
  private readonly indexFile: string;
  private readonly packBytes: number;
  private readonly db: Database.Database;
  private readonly sql: ReturnType<typeof prepare>;
  /** Rows written to packs but not yet committed to the index. */
  private readonly puts = new Map<ContentHash, Row>();
  private readonly touches = new Map<ContentHash, number>();
  /** Touches this process logged since it last folded the log. */
  private logged = 0;
  private readonly removes = new Set<ContentHash>();
  private flushTimer: NodeJS.Timeout | undefined;
  /** Open pack fds, least recently used first. */
  private readonly fds = new Map<number, number>();
  /** Packs written since the last sync, and packs a sync in flight holds. */
  private readonly dirty = new Set<number>();
  private readonly syncing = new Set<number>();
  private writer: Writer | undefined;
  /** Packs with an early fdatasync in flight (their fds stay open). */
  private readonly early = new Set<number>();
  private lastSeq: number;
  private totals: { objects: number; bytes: number; dataVersion: number } | undefined;
  private syncs: Promise<unknown> = Promise.resolve();
  /** A sync queued behind the running one: later callers join it (group commit). */
  private pendingSync: Promise<void> | undefined;
  private compaction: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(dir: string, db: Database.Database, packBytes: number) {
    this.dir = dir;
    this.packsDir = join(dir, 'packs');
    this.indexFile = join(this.packsDir, 'index.db');
    this.packBytes = packBytes;
    this.db = db;
    this.sql = prepare(db);
    const maxSeq = (this.sql.maxSeq.get() as { seq: number | null }).seq ?? 0;
    this.lastSeq = Math.max(maxSeq, this.durableSeq());
  }

  /**
   * Opens (creating) the store under `dir`. Drops index rows that point past
   * the end of their pack (or into a missing pack), and remembers which packs
   * hold objects written since the last sync, so the next sync covers them.
   */
  static open(dir: string, options: PackChunkStoreOptions = {}): PackChunkStore {
    const packBytes = options.packBytes ?? DEFAULT_PACK_BYTES;
    if (!Number.isSafeInteger(packBytes) || packBytes <= 0) {
      throw new TongbuError('BAD_ARGUMENT', `pack size must be a positive integer: ${packBytes}`);
    }
    const packsDir = join(dir, 'packs');
    let db: Database.Database | undefined;
    try {
      fs.mkdirSync(packsDir, { recursive: true });
      db = new Database(join(packsDir, 'index.db'));
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('busy_timeout = 10000');
      db.exec(SCHEMA);
      const store = new PackChunkStore(dir, db, packBytes);
      store.dropRowsPastPackEnds();
      const unsynced = store.sql.unsyncedPacks.all(store.durableSeq()) as { pack: number }[];
      for (const { pack } of unsynced) store.dirty.add(pack);
      db.transaction(() => store.foldTouches())();
      return store;
    } catch (err) {
      db?.close();
      throw storeError(err, packsDir, 'cannot open chunk store');
    }
  }

  get(hash: ContentHash): Promise<Uint8Array> {
    return settle(() => this.getSync(hash));
  }

  /** Reads and verifies one object; NOT_FOUND, or HASH_MISMATCH on a damaged copy. */
  getSync(hash: ContentHash): Buffer {
    const row = this.lookup(hash);
    if (!row) throw new TongbuError('NOT_FOUND', `no chunk ${hash}`, { data: { hash } });
    const bytes = this.read(row);
    const actual = bytes.length === row.length ? storeAddress(bytes) : undefined;
    if (actual !== hash) {
      const why = actual ? `hashes to ${actual}` : `truncated to ${bytes.length} bytes`;
      throw new TongbuError('HASH_MISMATCH', `stored chunk ${hash} is damaged (${why})`, {
        data: { hash, ...(actual ? { actual } : {}) },
        retryable: false,
      });
    }
    return bytes;
  }

  put(bytes: Uint8Array, expected?: ContentHash): Promise<ContentHash> {
    return settle(() => this.putSync(bytes, expected));
  }

  /** Stores bytes under their hash after checking it; a present chunk is only touched. */
  putSync(bytes: Uint8Array, expected?: ContentHash): ContentHash {
    const hash = this.checkBytes(bytes, expected);
    this.storeChecked(bytes, hash);
    return hash;
  }

  /** The hash of bytes that may be stored: TOO_LARGE, or HASH_MISMATCH against `expected`. */
  checkBytes(bytes: Uint8Array, expected?: ContentHash): ContentHash {
    return checkObjectBytes(bytes, expected);
  }

  /** Appends bytes that `checkBytes` found to hash to `hash`; a present chunk is only touched. */
  storeChecked(bytes: Uint8Array, hash: ContentHash): void {
    this.flushIfFull();
    const now = Date.now();
    if (this.touch(hash, now)) return;
    const location = this.append(bytes);
    this.puts.set(hash, { ...location, touchedMs: now, seq: ++this.lastSeq });
    if (this.totals) {
      this.totals.objects++;
      this.totals.bytes += bytes.length;
    }
    this.scheduleFlush();
  }

  has(hash: ContentHash): Promise<boolean> {
    return settle(() => this.lookup(hash) !== undefined);
  }

  /**
   * The hashes of `hashes` this store lacks. Present ones are touched, so a
   * garbage collection within its grace period keeps them.
   */
  missing(hashes: readonly ContentHash[]): ContentHash[] {
    this.flushIfFull();
    const now = Date.now();
    // Looked up and touched in one write transaction: a gc in another
    // process sees the touches, or runs wholly before and the answer says
    // absent. Touches are appended to a log (a few pages a batch) instead of
    // rewriting each row's page of the index; gc folds the log in first.
    const run = this.db.transaction(() =>
      hashes.filter((h) => {
        const waiting = this.puts.get(h);
        if (waiting) {
          waiting.touchedMs = now;
          return false;
        }
        if (this.removes.has(h)) return true;
        const key = toKey(h);
        if (this.sql.present.get(key) === undefined) return true;
        this.sql.logTouch.run(now, key);
        this.logged++;
        return false;
      }),
    );
    let absent: ContentHash[];
    try {
      absent = run.immediate();
    } catch (err) {
      throw storeError(err, this.indexFile, 'cannot read chunk index');
    }
    // The log is folded into the rows now and then, so it stays small when no gc runs.
    if (this.logged >= FOLD_ROWS) {
      this.logged = 0;
      this.db.transaction(() => this.foldTouches())();
    }
    return absent;
  }

  lacking(hashes: readonly ContentHash[]): ContentHash[] {
    const run = this.db.transaction(() =>
      hashes.filter((h) => {
        if (this.puts.has(h)) return false;
        return this.removes.has(h) || this.sql.present.get(toKey(h)) === undefined;
      }),
    );
    try {
      return run();
    } catch (err) {
      throw storeError(err, this.indexFile, 'cannot read chunk index');
    }
  }

  /** Moves the logged touches into the index rows (newest wins) and empties the log. */
  private foldTouches(): void {
    this.sql.foldTouches.run();
    this.sql.clearTouches.run();
  }

  /**
   * Makes every write so far durable: fdatasyncs the packs written since the
   * last sync, then commits the index with the highest sequence number they cover.
   */
  sync(): Promise<void> {
    // A sync that has not started yet covers every write made before it starts: join it.
    if (this.pendingSync) return this.pendingSync;
    const run = this.syncs.then(() => {
      this.pendingSync = undefined;
      return this.syncNow();
    });
    this.pendingSync = run;
    this.syncs = run.catch(() => undefined);
    return run;
  }

  /** Every stored object, read from the index a page at a time (removing while iterating is fine). */
  *entries(): Generator<StoredObject> {
    let after: Buffer = Buffer.alloc(0);
    this.flush();
    this.db.transaction(() => this.foldTouches())();
    for (;;) {
      this.flush();
      const rows = this.sql.page.all(after, PAGE_ROWS) as {
        hash: Buffer;
        length: number;
        touched_ms: number;
      }[];
      for (const r of rows) yield { hash: toHash(r.hash), size: r.length, mtimeMs: r.touched_ms };
      const last = rows.at(-1);
      if (!last || rows.length < PAGE_ROWS) return;
      after = last.hash;
    }
  }

  /** Drops the object's index row; its bytes stay in the pack until `compact()`. */
  remove(hash: ContentHash, untouchedSince?: number): void {
    this.flushIfFull();
    const row = this.lookup(hash);
    if (!row) return;
    if (untouchedSince !== undefined) {
      // Decided and done in one transaction with the logged touches folded
      // in, so a touch racing a gc wins.
      this.flush();
      const removed = this.db.transaction(() => {
        this.foldTouches();
        return this.sql.removeUntouched.run(toKey(hash), untouchedSince).changes > 0;
      })();
      if (removed && this.totals) {
        this.totals.objects--;
        this.totals.bytes -= row.length;
      }
      return;
    }
    this.puts.delete(hash);
    this.touches.delete(hash);
    this.removes.add(hash);
    if (this.totals) {
      this.totals.objects--;
      this.totals.bytes -= row.length;
    }
    this.scheduleFlush();
  }

  /** From the index; counted once, then kept up to date (recounted when another process commits). */
  stats(): ChunkStoreStats {
    const dataVersion = this.db.pragma('data_version', { simple: true }) as number;
    if (this.totals?.dataVersion !== dataVersion) {
      this.flush();
      const t = this.sql.totals.get() as { objects: number; bytes: number | null };
      this.totals = { objects: t.objects, bytes: t.bytes ?? 0, dataVersion };
    }
    return { objects: this.totals.objects, bytes: this.totals.bytes };
  }

  /** After an unclean stop: re-hashes the objects written since the last sync, drops the damaged ones. */
  recover(): { checked: number; removed: ContentHash[] } {
    this.flush();
    let checked = 0;
    const damaged: IndexRow[] = [];
    for (const row of this.sql.unsynced.iterate(this.durableSeq()) as Iterable<IndexRow>) {
      checked++;
      if (!this.readIntact(row)) damaged.push(row);
    }
    this.dropRows(damaged);
    return { checked, removed: damaged.map((r) => toHash(r.hash)) };
  }

  /**
   * Rewrites the packs whose live bytes are below `minLiveRatio` of their
   * size: copies their live objects to the current pack, makes the copies
   * durable, points the index at them, and only then deletes the old pack.
   * Runs one pack at a time and yields to the event loop while copying; calls
   * are queued, never run at once.
   */
  compact(options: CompactOptions = {}): Promise<CompactReport> {
    const run = this.compaction.then(() => this.compactNow(options));
    this.compaction = run.catch(() => undefined);
    return run;
  }

  /** Where an object's bytes are, for tools and tests. */
  location(hash: ContentHash): (Location & { path: string }) | undefined {
    const row = this.lookup(hash);
    return (
      row && {
        pack: row.pack,
        offset: row.offset,
        length: row.length,
        path: this.packPath(row.pack),
      }
    );
  }

  /** Commits waiting index rows (not durably: that is `sync()`), closes packs and the index. */
  close(): void {
    if (this.closed) return;
    try {
      this.flush();
    } finally {
      this.closed = true;
      clearTimeout(this.flushTimer);
      for (const fd of this.fds.values()) fs.closeSync(fd);
      this.fds.clear();
      this.writer = undefined;
      this.db.close();
    }
  }

  /** One sync at a time, so the durable sequence number never covers a pack another one is syncing. */
  private async syncNow(): Promise<void> {
    const durable = this.lastSeq;
    // What this sync covers needs no early sync (a replica syncs every batch).
    if (this.writer) this.writer.unsynced = 0;
    const packs = [...this.dirty];
    this.dirty.clear();
    for (const p of packs) this.syncing.add(p);
    try {
      await Promise.all(packs.map((p) => fdatasync(this.fd(p))));
    } catch (err) {
      for (const p of packs) this.dirty.add(p);
      throw fromSystemError(err, this.packsDir, 'cannot sync');
    } finally {
      this.syncing.clear();
    }
    this.flush(durable);
    await this.syncIndex();
  }

  /**
   * Makes every index commit so far durable: an fdatasync of the WAL (the same
   * inode SQLite appends to, so it covers frames written through its own fd).
   * Without a WAL file the commits were checkpointed, which syncs the database.
   */
  private async syncIndex(): Promise<void> {
    let fd: number | undefined;
    try {
      fd = await fsOpen(`${this.indexFile}-wal`, 'r');
      await fdatasync(fd);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw fromSystemError(err, this.indexFile, 'cannot sync chunk index');
      }
    } finally {
      if (fd !== undefined) await fsClose(fd).catch(() => undefined);
    }
  }

  private async compactNow(options: CompactOptions): Promise<CompactReport> {
    const minLiveRatio = options.minLiveRatio ?? 0.5;
    const quietMs = options.quietMs ?? 60_000;
    await this.sync(); // every row committed, every copy we make below lands after them
    const live = new Map(
      (this.sql.liveBytes.all() as { pack: number; bytes: number }[]).map((r) => [r.pack, r.bytes]),
    );
    const now = Date.now();
    const candidates = this.packFiles().filter(({ pack, size, mtimeMs }) => {
      // quietMs 0 takes every pack: a file's mtime can sit a fraction of a
      // millisecond past Date.now(), which must not make it look recent.
      if (pack === this.writer?.pack || (quietMs > 0 && now - mtimeMs < quietMs)) return false;
      return size === 0 || (live.get(pack) ?? 0) / size < minLiveRatio;
    });
    let bytesReclaimed = 0;
    const damagedHashes: ContentHash[] = [];
    for (const { pack, size } of candidates) {
      const moves: { row: IndexRow; to: Location }[] = [];
      const damaged: IndexRow[] = [];
      let sinceYield = 0;
      for (const row of this.sql.packRows.all(pack) as IndexRow[]) {
        const bytes = this.readIntact(row);
        if (!bytes) {
          damaged.push(row);
          continue;
        }
        moves.push({ row, to: this.append(bytes) });
        sinceYield += bytes.length;
        if (sinceYield >= COMPACT_YIELD_BYTES) {
          sinceYield = 0;
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      await this.sync(); // the copies are durable before the index points at them
      this.db.transaction(() => {
        for (const { row, to } of moves) {
          this.sql.relocate.run(to.pack, to.offset, row.hash, row.pack, row.offset);
        }
      })();
      this.dropRows(damaged);
      this.forgetPack(pack);
      fs.rmSync(this.packPath(pack), { force: true });
      bytesReclaimed += size - moves.reduce((sum, m) => sum + m.row.length, 0);
      damagedHashes.push(...damaged.map((r) => toHash(r.hash)));
    }
    return { packsRewritten: candidates.length, bytesReclaimed, damaged: damagedHashes };
  }

  /** The object's row, waiting or committed; undefined when absent. */
  private lookup(hash: ContentHash): Row | undefined {
    const waiting = this.puts.get(hash);
    if (waiting) return waiting;
    if (this.removes.has(hash)) return undefined;
    const key = toKey(hash);
    let r:
      { pack: number; offset: number; length: number; touched_ms: number; seq: number } | undefined;
    try {
      r = this.sql.get.get(key) as typeof r;
    } catch (err) {
      throw storeError(err, this.indexFile, 'cannot read chunk index');
    }
    return (
      r && { pack: r.pack, offset: r.offset, length: r.length, touchedMs: r.touched_ms, seq: r.seq }
    );
  }

  /** Sets a present object's touch time; false when absent. */
  private touch(hash: ContentHash, now: number): boolean {
    const waiting = this.puts.get(hash);
    if (waiting) {
      waiting.touchedMs = now;
      return true;
    }
    if (!this.lookup(hash)) return false;
    this.touches.set(hash, now);
    return true;
  }

  private append(bytes: Uint8Array): Location {
    let w = this.writer;
    if (!w || (w.end > 0 && w.end + bytes.length > this.packBytes)) w = this.startPack();
    const offset = w.end;
    try {
      for (let done = 0; done < bytes.length;) {
        done += fs.writeSync(w.fd, bytes, done, bytes.length - done, offset + done);
      }
    } catch (err) {
      throw fromSystemError(err, this.packPath(w.pack), 'cannot store chunk');
    }
    w.end += bytes.length;
    this.dirty.add(w.pack);
    w.unsynced += bytes.length;
    if (w.unsynced >= EARLY_SYNC_BYTES) {
      w.unsynced = 0;
      this.earlySync(w);
    }
    return { pack: w.pack, offset, length: bytes.length };
  }

  /** Claims the next pack number in the index and creates its file, never reusing one. */
  private startPack(): Writer {
    const highest = this.packFiles().reduce((max, p) => Math.max(max, p.pack), 0);
    const claim = this.db.transaction(() => {
      const next = Math.max(this.meta('next_pack'), highest + 1);
      this.sql.setMeta.run('next_pack', next + 1);
      return next;
    });
    for (;;) {
      const pack = claim.immediate();
      const path = this.packPath(pack);
      try {
        const fd = fs.openSync(path, 'wx+');
        syncDir(this.packsDir);
        this.fds.set(pack, fd);
        this.writer = { pack, fd, end: 0, unsynced: 0 };
        return this.writer;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw fromSystemError(err, path, 'cannot create pack');
        }
      }
    }
  }

  /** Reads a location; shorter than its length when the pack ends early. */
  private read(loc: Location): Buffer {
    const path = this.packPath(loc.pack);
    const bytes = Buffer.allocUnsafe(loc.length);
    let done = 0;
    try {
      const fd = this.fd(loc.pack);
      while (done < loc.length) {
        const n = fs.readSync(fd, bytes, done, loc.length - done, loc.offset + done);
        if (n === 0) break;
        done += n;
      }
    } catch (err) {
      throw fromSystemError(err, path, 'cannot read chunk');
    }
    return done === loc.length ? bytes : bytes.subarray(0, done);
  }

  /** A row's bytes when they are all there and hash to its name; undefined when damaged or its pack is gone. */
  private readIntact(row: IndexRow): Buffer | undefined {
    let bytes: Buffer;
    try {
      bytes = this.read(row);
    } catch (err) {
      if (isTongbuError(err, 'NOT_FOUND')) return undefined;
      throw err;
    }
    return bytes.length === row.length && storeAddress(bytes) === toHash(row.hash)
      ? bytes
      : undefined;
  }

  /** An fd of the pack, opened on first use; the least recently used read-only ones are closed. */
  private fd(pack: number): number {
    let fd = this.fds.get(pack);
    if (fd !== undefined) {
      this.fds.delete(pack);
    } else {
      fd = fs.openSync(this.packPath(pack), 'r');
    }
    this.fds.set(pack, fd);
    for (const [p, old] of this.fds) {
      if (this.fds.size <= MAX_READ_FDS) break;
      if (p === this.writer?.pack || this.dirty.has(p) || this.syncing.has(p) || this.early.has(p))
        continue;
      fs.closeSync(old);
      this.fds.delete(p);
    }
    return fd;
  }

  /**
   * Starts an fdatasync of the pack being written, in the background: the
   * kernel may hold gigabytes dirty, and `sync()` before a commit would
   * otherwise write them all while the commit waits. Durability is still
   * decided by `sync()` alone, whose own fdatasync then has little left.
   */
  private earlySync(w: Writer): void {
    if (this.early.has(w.pack)) return;
    this.early.add(w.pack);
    fs.fdatasync(w.fd, () => this.early.delete(w.pack));
  }

  private forgetPack(pack: number): void {
    const fd = this.fds.get(pack);
    if (fd !== undefined) fs.closeSync(fd);
    this.fds.delete(pack);
    this.dirty.delete(pack);
  }

  private flushIfFull(): void {
    if (this.puts.size + this.touches.size + this.removes.size >= FLUSH_ROWS) this.flush();
  }

  private scheduleFlush(): void {
    if (this.flushTimer || this.puts.size + this.touches.size + this.removes.size === 0) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      try {
        this.flush();
      } catch {
        // the rows stay waiting; the next flush retries and reports the error
      }
    }, FLUSH_AFTER_MS);
  }

  /** Commits the waiting rows in one transaction, with the durable sequence number when given. */
  private flush(durableSeq?: number): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.puts.size + this.touches.size + this.removes.size === 0 && durableSeq === undefined) {
      return;
    }
    try {
      this.db.transaction(() => {
        for (const h of this.removes) this.sql.remove.run(toKey(h));
        for (const [h, r] of this.puts) {
          this.sql.insert.run(toKey(h), r.pack, r.offset, r.length, r.touchedMs, r.seq);
        }
        for (const [h, ms] of this.touches) this.sql.logTouch.run(ms, toKey(h));
        if (durableSeq !== undefined && durableSeq > this.durableSeq()) {
          this.sql.setMeta.run('durable_seq', durableSeq);
        }
      })();
    } catch (err) {
      throw storeError(err, this.indexFile, 'cannot write chunk index');
    }
    this.puts.clear();
    this.touches.clear();
    this.removes.clear();
  }

  private dropRows(rows: readonly IndexRow[]): void {
    if (rows.length === 0) return;
    this.db.transaction(() => {
      for (const r of rows) this.sql.removeAt.run(r.hash, r.pack, r.offset);
    })();
    this.totals = undefined;
  }

  private dropRowsPastPackEnds(): void {
    const sizes = new Map(this.packFiles().map((p) => [p.pack, p.size]));
    let dropped = 0;
    this.db.transaction(() => {
      for (let r = this.sql.nextPack.get(-1) as { pack: number } | undefined; r;) {
        const size = sizes.get(r.pack);
        dropped +=
          size === undefined
            ? this.sql.dropPack.run(r.pack).changes
            : this.sql.dropPast.run(r.pack, Math.max(0, size - MAX_OBJECT_BYTES), size).changes;
        r = this.sql.nextPack.get(r.pack) as { pack: number } | undefined;
      }
    })();
    if (dropped > 0) this.totals = undefined;
  }

  private packFiles(): { pack: number; size: number; mtimeMs: number }[] {
    return fs.readdirSync(this.packsDir).flatMap((name) => {
      const m = /^pack-(\d{8,})\.dat$/.exec(name);
      const st = m && fs.statSync(join(this.packsDir, name), { throwIfNoEntry: false });
      return m && st ? [{ pack: Number(m[1]), size: st.size, mtimeMs: st.mtimeMs }] : [];
    });
  }

  private packPath(pack: number): string {
    return join(this.packsDir, packName(pack));
  }

  private durableSeq(): number {
    return this.meta('durable_seq');
  }

  private meta(key: string): number {
    return (this.sql.getMeta.get(key) as { value: number } | undefined)?.value ?? 0;
  }
}

function prepare(db: Database.Database) {
  const cols = 'pack, "offset" AS offset, length';
  return {
    get: db.prepare(`SELECT ${cols}, touched_ms, seq FROM objects WHERE hash = ?`),
    insert: db.prepare('INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?)'),
    present: db.prepare('SELECT 1 FROM objects WHERE hash = ?').pluck(),
    logTouch: db.prepare('INSERT INTO touch_log (ms, hash) VALUES (?, ?)'),
    foldTouches: db.prepare(
      'UPDATE objects SET touched_ms = t.ms FROM (SELECT hash, MAX(ms) AS ms FROM touch_log GROUP BY hash) AS t WHERE objects.hash = t.hash AND objects.touched_ms < t.ms',
    ),
    clearTouches: db.prepare('DELETE FROM touch_log'),
    remove: db.prepare('DELETE FROM objects WHERE hash = ?'),
    removeUntouched: db.prepare('DELETE FROM objects WHERE hash = ? AND touched_ms < ?'),
    removeAt: db.prepare('DELETE FROM objects WHERE hash = ? AND pack = ? AND "offset" = ?'),
    relocate: db.prepare(
      'UPDATE objects SET pack = ?, "offset" = ? WHERE hash = ? AND pack = ? AND "offset" = ?',
    ),
    page: db.prepare(
      'SELECT hash, length, touched_ms FROM objects WHERE hash > ? ORDER BY hash LIMIT ?',
    ),
    packRows: db.prepare(`SELECT hash, ${cols} FROM objects WHERE pack = ? ORDER BY "offset"`),
    unsynced: db.prepare(`SELECT hash, ${cols} FROM objects WHERE seq > ?`),
    unsyncedPacks: db.prepare('SELECT DISTINCT pack FROM objects WHERE seq > ?'),
    nextPack: db.prepare('SELECT pack FROM objects WHERE pack > ? ORDER BY pack LIMIT 1'),
    dropPack: db.prepare('DELETE FROM objects WHERE pack = ?'),
    dropPast: db.prepare(
      'DELETE FROM objects WHERE pack = ? AND "offset" >= ? AND "offset" + length > ?',
    ),
    liveBytes: db.prepare('SELECT pack, SUM(length) AS bytes FROM objects GROUP BY pack'),
    totals: db.prepare('SELECT COUNT(*) AS objects, SUM(length) AS bytes FROM objects'),
    maxSeq: db.prepare('SELECT MAX(seq) AS seq FROM objects'),
    getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
    setMeta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
  };
}

/** The result of a synchronous call as a promise: a throw becomes a rejection. */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(toTongbuError(err));
  }
}

/** Makes a new directory entry durable. */
function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** SQLite's "disk full" as NO_SPACE; every other failure through fromSystemError. */
function storeError(err: unknown, path: string, action: string): TongbuError {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && code.startsWith('SQLITE_FULL')) {
    return new TongbuError('NO_SPACE', `${action} ${path}: no space left on device`, {
      data: { path },
      cause: err,
    });
  }
  return fromSystemError(err, path, action);
}
