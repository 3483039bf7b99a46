/**
 * An endpoint held in memory, for tests of the sync engine: a map of keys to
 * entries and bytes. It behaves like a careful filesystem: writes are atomic
 * and verified, parents are implied, symlinks are never followed, and adding
 * or removing a child sets its directory's mtime to now (so an engine that
 * sets directory times too early is caught here, not only on disk). With
 * `nameFolding` it stores names folded, as a normalizing destination would.
 * Tests seed content with `put`/`putDir`/`putLink`, inject failures through
 * `failures`, and inspect the result with `snapshot`.
 */
import { TongbuError, type ErrorCode } from '../../core/errors.js';
import { ContentHasher, hashBytes, type ContentHash } from '../../core/hash.js';
import {
  joinKey,
  parentKey,
  quoteKey,
  validateKey,
  type Key,
  type NameFolding,
} from '../../core/key.js';
import {
  writeAlgorithm,
  type Endpoint,
  type EndpointCapabilities,
  type Entry,
  type EntryKind,
  type EntryMeta,
  type HashOptions,
  type ListOptions,
  type WriteRequest,
  type WriteResult,
} from '../endpoint.js';

/** What the store holds for one key; `bytes` is empty for dirs and links. */
export interface MemoryRecord {
  readonly entry: Entry;
  readonly bytes: Uint8Array;
}

/** Test hooks: return an Error to make the operation on `key` fail with it. */
export interface MemoryFailures {
  /** Checked once the content is consumed and verified; nothing becomes visible. */
  readonly write?: (key: Key) => Error | undefined;
  /** Thrown by `read` after the first half of the bytes, and by `hash`. */
  readonly read?: (key: Key) => Error | undefined;
}

export interface MemoryEndpointOptions {
  readonly url?: string;
  /** False: the store does not exist until `open({ create: true })`. */
  readonly exists?: boolean;
  readonly nameFolding?: NameFolding;
  readonly failures?: MemoryFailures;
  /** Clock for implied directories and parent mtimes (default Date.now). */
  readonly now?: () => number;
}

export interface MemoryEndpoint extends Endpoint {
  /** Every record by stored key, sorted by key. */
  snapshot(): Map<Key, MemoryRecord>;
  /** Seed helpers: set state directly (parents implied; parent mtimes untouched). */
  put(key: Key, content: Uint8Array | string, meta?: Partial<EntryMeta>): Entry;
  putDir(key: Key, meta?: Partial<EntryMeta>): Entry;
  putLink(key: Key, target: string, meta?: Partial<EntryMeta>): Entry;
}

const READ_CHUNK = 1 << 20;
const LIST_BATCH = 256;
const NO_BYTES = new Uint8Array(0);

type Signal = { readonly signal?: AbortSignal };

interface Slot {
  entry: Entry;
  bytes: Uint8Array;
  children: number;
}

export function createMemoryEndpoint(options: MemoryEndpointOptions = {}): MemoryEndpoint {
  return new MemoryStore(options);
}

class MemoryStore implements MemoryEndpoint {
  readonly url: string;
  readonly capabilities: EndpointCapabilities;
  private exists: boolean;
  private readonly folding: NameFolding;
  private readonly failures: MemoryFailures;
  private readonly now: () => number;
  /** By folded key. */
  private readonly slots = new Map<string, Slot>();

  constructor(options: MemoryEndpointOptions) {
    this.url = options.url ?? 'memory://';
    this.exists = options.exists ?? true;
    this.folding = options.nameFolding ?? 'none';
    this.failures = options.failures ?? {};
    this.now = options.now ?? Date.now;
    this.capabilities = Object.freeze({
      listedHashes: [],
      mtimePrecisionMs: 0.001,
      symlinks: true,
      emptyDirs: true,
      modes: true,
      nameFolding: this.folding,
      localPath: false,
      localCopy: false,
      atomicCommit: false,
      dedupWrites: false,
    });
  }

  open({ create }: { readonly create: boolean }): Promise<void> {
    return attempt(() => {
      if (!this.exists && !create) this.present();
      this.exists = true;
    });
  }

  async *list(options: ListOptions = {}): AsyncIterable<readonly Entry[]> {
    this.present();
    const entries = [...this.slots.values()].map((s) => s.entry);
    for (let i = 0; i < entries.length; i += LIST_BATCH) {
      await io();
      checkAborted(options.signal, 'list', this.url);
      yield entries.slice(i, i + LIST_BATCH);
    }
  }

  stat(key: Key): Promise<Entry | undefined> {
    return attempt(() => {
      validateKey(key);
      this.present();
      return this.find(key)?.entry;
    });
  }

  async *read(key: Key, options: Signal = {}): AsyncIterable<Uint8Array> {
    const bytes = this.fileBytes(key);
    const failure = this.failures.read?.(key);
    const end = failure ? Math.ceil(bytes.length / 2) : bytes.length;
    checkAborted(options.signal, 'read of', key);
    for (let at = 0; at < end; at += READ_CHUNK) {
      await io();
      checkAborted(options.signal, 'read of', key);
      yield bytes.slice(at, Math.min(at + READ_CHUNK, end));
    }
    if (failure) throw failure;
  }

  hash(keys: readonly Key[], options: HashOptions = {}): Promise<ContentHash[]> {
    return attempt(() =>
      keys.map((key) => {
        checkAborted(options.signal, 'hash of', key);
        const bytes = this.fileBytes(key);
        const failure = this.failures.read?.(key);
        if (failure) throw failure;
        return hashBytes(bytes, options.algorithm);
      }),
    );
  }

  async write(
    request: WriteRequest,
    content: AsyncIterable<Uint8Array>,
    options: Signal = {},
  ): Promise<WriteResult> {
    const key = validateKey(request.key);
    this.present();
    if (!Number.isSafeInteger(request.size) || request.size < 0) {
      throw fail('BAD_ARGUMENT', key, `bad size ${request.size}`);
    }
    this.placeLeaf(key, 'write');
    checkAborted(options.signal, 'write of', key);
    const hasher = new ContentHasher(writeAlgorithm(request));
    const chunks: Uint8Array[] = [];
    for await (const chunk of content) {
      checkAborted(options.signal, 'write of', key);
      hasher.update(chunk);
      chunks.push(new Uint8Array(chunk));
      if (hasher.bytes > request.size) throw sizeMismatch(key, request.size, 'more than');
    }
    checkAborted(options.signal, 'write of', key);
    if (hasher.bytes !== request.size) throw sizeMismatch(key, request.size, hasher.bytes);
    const hash = hasher.digest();
    if (request.expectedHash !== undefined && hash !== request.expectedHash) {
      const expected = request.expectedHash;
      throw fail('HASH_MISMATCH', key, `content hashes to ${hash}, expected ${expected}`);
    }
    const failure = this.failures.write?.(key);
    if (failure) throw failure;
    // From here on nothing awaits: the check and the commit are one step.
    const stored = this.placeLeaf(key, 'write');
    const bytes = new Uint8Array(hasher.bytes);
    let at = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, at);
      at += chunk.length;
    }
    const entry = this.insert(makeEntry(stored, 'file', bytes.length, request), bytes, true);
    return { entry, hash };
  }

  mkdir(key: Key, meta: EntryMeta): Promise<void> {
    return attempt(() => {
      validateKey(key);
      this.present();
      const existing = this.find(key);
      if (existing?.entry.kind === 'dir') return;
      if (existing) throw fail('NOT_A_DIRECTORY', key, `exists as a ${existing.entry.kind}`);
      this.insert(makeEntry(this.place(key), 'dir', 0, meta), NO_BYTES, true);
    });
  }

  symlink(key: Key, target: string, meta: EntryMeta): Promise<void> {
    return attempt(() => {
      validateKey(key);
      this.present();
      checkTarget(key, target);
      const stored = this.placeLeaf(key, 'link');
      this.insert(makeEntry(stored, 'symlink', 0, meta, target), NO_BYTES, true);
    });
  }

  setMeta(key: Key, meta: EntryMeta): Promise<Entry> {
    return attempt(() => {
      validateKey(key);
      this.present();
      const slot = this.find(key);
      if (!slot) throw fail('NOT_FOUND', key, 'no such entry');
      const { key: stored, kind, size, target } = slot.entry;
      slot.entry = makeEntry(stored, kind, size, meta, target);
      return slot.entry;
    });
  }

  remove(key: Key, kind: EntryKind): Promise<void> {
    return attempt(() => {
      validateKey(key);
      this.present();
      const slot = this.find(key);
      if (!slot) return;
      if (slot.entry.kind !== kind) {
        throw fail('BAD_ARGUMENT', key, `cannot remove a ${slot.entry.kind} as a ${kind}`);
      }
      if (slot.children > 0) throw fail('IO', key, 'cannot remove: directory not empty');
      this.slots.delete(this.fold(key));
      this.adjustParent(slot.entry.key, -1, true);
    });
  }

  cleanup(): Promise<number> {
    return Promise.resolve(0);
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  snapshot(): Map<Key, MemoryRecord> {
    const slots = [...this.slots.values()].sort((a, b) => compare(a.entry.key, b.entry.key));
    return new Map(
      slots.map((s) => [s.entry.key, { entry: s.entry, bytes: new Uint8Array(s.bytes) }]),
    );
  }

  put(key: Key, content: Uint8Array | string, meta: Partial<EntryMeta> = {}): Entry {
    validateKey(key);
    const bytes =
      typeof content === 'string' ? new TextEncoder().encode(content) : new Uint8Array(content);
    const stored = this.placeLeaf(key, 'write');
    return this.insert(
      makeEntry(stored, 'file', bytes.length, this.meta(meta, 0o644)),
      bytes,
      false,
    );
  }

  putDir(key: Key, meta: Partial<EntryMeta> = {}): Entry {
    validateKey(key);
    const existing = this.find(key);
    if (existing && existing.entry.kind !== 'dir') {
      throw fail('NOT_A_DIRECTORY', key, `exists as a ${existing.entry.kind}`);
    }
    const stored = existing?.entry.key ?? this.place(key);
    return this.insert(makeEntry(stored, 'dir', 0, this.meta(meta, 0o755)), NO_BYTES, false);
  }

  putLink(key: Key, target: string, meta: Partial<EntryMeta> = {}): Entry {
    validateKey(key);
    checkTarget(key, target);
    const stored = this.placeLeaf(key, 'link');
    const entry = makeEntry(stored, 'symlink', 0, this.meta(meta, 0o777), target);
    return this.insert(entry, NO_BYTES, false);
  }

  private present(): void {
    if (!this.exists) {
      throw new TongbuError('SOURCE_NOT_FOUND', `source ${this.url} does not exist`, {
        data: { url: this.url },
      });
    }
  }

  /** The map key: each name folded as the store compares names. */
  private fold(key: Key): string {
    if (this.folding === 'none') return key;
    const names = key.split('/').map((name) => this.storedName(name));
    return (this.folding === 'nfc-casefold' ? names.map((n) => n.toLowerCase()) : names).join('/');
  }

  /** A new name as the store spells it (case is kept, as on macOS). */
  private storedName(name: string): string {
    if (this.folding === 'none') return name;
    return name.normalize(this.folding === 'nfd' ? 'NFD' : 'NFC');
  }

  private find(key: Key): Slot | undefined {
    return this.slots.get(this.fold(key));
  }

  private fileBytes(key: Key): Uint8Array {
    validateKey(key);
    this.present();
    const slot = this.find(key);
    if (!slot) throw fail('NOT_FOUND', key, 'no such entry');
    if (slot.entry.kind !== 'file') throw fail('BAD_ARGUMENT', key, `is a ${slot.entry.kind}`);
    return slot.bytes;
  }

  /**
   * The key under which `key` would be stored, after checking every parent
   * that exists is a directory (a link is not followed). Creates nothing.
   */
  private place(key: Key): Key {
    const names = key.split('/');
    let stored = '';
    for (let i = 0; i < names.length - 1; i++) {
      const parent = this.slots.get(this.fold(joinKey(stored, names[i]!)));
      if (parent && parent.entry.kind !== 'dir') {
        const [where, kind] = [quoteKey(parent.entry.key), parent.entry.kind];
        throw fail('NOT_A_DIRECTORY', key, `cannot create: ${where} is a ${kind}`);
      }
      stored = parent?.entry.key ?? joinKey(stored, this.storedName(names[i]!));
    }
    return joinKey(stored, this.storedName(names[names.length - 1]!));
  }

  /** Where a file or link goes: not over a directory; replaces the rest. */
  private placeLeaf(key: Key, action: 'write' | 'link'): Key {
    const existing = this.find(key);
    if (existing?.entry.kind === 'dir')
      throw fail('BAD_ARGUMENT', key, `cannot ${action}: is a dir`);
    return existing?.entry.key ?? this.place(key);
  }

  /** Stores an entry whose place was checked, creating missing parents. */
  private insert(entry: Entry, bytes: Uint8Array, touchParent: boolean): Entry {
    this.impliedParents(entry.key);
    const folded = this.fold(entry.key);
    const existing = this.slots.get(folded);
    this.slots.set(folded, { entry, bytes, children: existing?.children ?? 0 });
    this.adjustParent(entry.key, existing ? 0 : 1, touchParent);
    return entry;
  }

  private impliedParents(key: Key): void {
    const parent = parentKey(key);
    if (parent === '' || this.slots.has(this.fold(parent))) return;
    this.impliedParents(parent);
    const entry = makeEntry(parent, 'dir', 0, { mtimeMs: this.now(), mode: 0o755 });
    this.slots.set(this.fold(parent), { entry, bytes: NO_BYTES, children: 0 });
    this.adjustParent(parent, 1, false);
  }

  private adjustParent(key: Key, children: number, touch: boolean): void {
    const parent = parentKey(key);
    const slot = parent === '' ? undefined : this.slots.get(this.fold(parent));
    if (!slot) return;
    slot.children += children;
    if (touch) slot.entry = Object.freeze({ ...slot.entry, mtimeMs: this.now() });
  }

  private meta(meta: Partial<EntryMeta>, mode: number): EntryMeta {
    return { mtimeMs: meta.mtimeMs ?? this.now(), mode: meta.mode ?? mode };
  }
}

function makeEntry(
  key: Key,
  kind: EntryKind,
  size: number,
  meta: EntryMeta,
  target?: string,
): Entry {
  const entry = { key, kind, size, mtimeMs: meta.mtimeMs, mode: meta.mode & 0o7777 };
  return Object.freeze(target === undefined ? entry : { ...entry, target });
}

function checkTarget(key: Key, target: string): void {
  if (target === '' || target.includes('\0')) {
    throw fail('BAD_ARGUMENT', key, `bad link target ${quoteKey(target)}`);
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Lets other tasks run between batches and chunks, as real I/O would. */
function io(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Runs a synchronous step as a promise, so a throw becomes a rejection. */
function attempt<T>(step: () => T): Promise<T> {
  try {
    return Promise.resolve(step());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

function checkAborted(signal: AbortSignal | undefined, action: string, what: string): void {
  if (signal?.aborted) {
    throw new TongbuError('ABORTED', `${action} ${quoteKey(what)} aborted`, {
      cause: signal.reason,
    });
  }
}

function sizeMismatch(key: Key, expected: number, received: number | 'more than'): TongbuError {
  const got = received === 'more than' ? `more than ${expected}` : `${received}`;
  return fail('HASH_MISMATCH', key, `received ${got} bytes, expected ${expected}`);
}

/** An error whose message starts with the key it is about. */
function fail(code: ErrorCode, key: Key, message: string): TongbuError {
  return new TongbuError(code, `${quoteKey(key)}: ${message}`, { data: { key } });
}
