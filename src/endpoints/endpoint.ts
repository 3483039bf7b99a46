/**
 * The one interface every endpoint implements: a local directory, a memory
 * tree (tests), and later a tongbu node and SQL tables. A small required core
 * plus declared capabilities; the sync engine reads the capabilities and
 * never probes for abilities at run time.
 */
import {
  algorithmOf,
  DEFAULT_HASH,
  FAST_HASH,
  type ContentHash,
  type HashAlgorithm,
} from '../core/hash.js';
import type { Key, NameFolding } from '../core/key.js';
import type { TongbuError } from '../core/errors.js';

export type EntryKind = 'file' | 'dir' | 'symlink';

/** One keyed item as an endpoint lists it. */
export interface Entry {
  readonly key: Key;
  readonly kind: EntryKind;
  /** Content length in bytes for files; 0 for directories and links. */
  readonly size: number;
  /** Modification time in milliseconds since the epoch (fractional). */
  readonly mtimeMs: number;
  /** Permission bits (0o7777 mask); 0 where the endpoint has none. */
  readonly mode: number;
  /** A symlink's target, byte-exact as stored; never followed. */
  readonly target?: string;
  /** Content hash, when the endpoint knows it without reading the content. */
  readonly hash?: ContentHash;
}

export interface EndpointCapabilities {
  /** Hashes that `list` returns with entries at no extra cost (see `syncHashAlgorithm`). */
  readonly listedHashes: readonly HashAlgorithm[];
  /** Granularity of stored mtimes; 0 when the endpoint keeps none. */
  readonly mtimePrecisionMs: number;
  readonly symlinks: boolean;
  readonly emptyDirs: boolean;
  readonly modes: boolean;
  /** How the endpoint folds names: two keys folding alike would collide. */
  readonly nameFolding: NameFolding;
  /** The endpoint is a local directory tree: `localPath` is defined. */
  readonly localPath: boolean;
  /**
   * The endpoint can copy from a local source tree itself, in bulk
   * (`copyFromLocal` is defined), like rclone's server-side copy.
   */
  readonly localCopy: boolean;
  /**
   * Writes stay invisible until `commit` applies them all at once (a tongbu
   * namespace); `commit` is defined.
   */
  readonly atomicCommit: boolean;
  /**
   * Writing content the endpoint already holds costs no transfer (a tongbu
   * namespace sends only chunks the node lacks): the engine writes a file
   * whose size matches instead of hashing both sides first, which would
   * read the source twice when the content did change.
   */
  readonly dedupWrites: boolean;
}

/** What a commit of an atomicCommit endpoint made. */
export interface CommitInfo {
  readonly commit: string;
  readonly entries: number;
  /** The head had moved meanwhile and the changes were merged onto it. */
  readonly merged: boolean;
  readonly tag?: string;
  /** Content bytes sent this run (what the destination lacked). */
  readonly uploadedBytes: number;
  /** On a replicated store: the write's mode and the fewest replicas any of its data reached, of R. */
  readonly replication?: {
    readonly mode: string;
    readonly replicas: number;
    readonly wanted: number;
  };
}

/** Metadata to apply to a written entry. */
export interface EntryMeta {
  readonly mtimeMs: number;
  readonly mode: number;
}

export interface WriteRequest extends EntryMeta {
  readonly key: Key;
  /** Expected content length; a different length is an error. */
  readonly size: number;
  /** When known in advance, the written bytes must hash to this. */
  readonly expectedHash?: ContentHash;
  /** The algorithm of the result's hash when no `expectedHash` names one (default sha256). */
  readonly algorithm?: HashAlgorithm;
  /**
   * The content's file on this machine, when the source is a local tree
   * and nothing throttles the read: a writer may read it itself (in its
   * own threads) and leave the content stream unread. It must then check,
   * as the stream would have, that the file kept the request's size and
   * mtime while it was read (FILE_CHANGED otherwise).
   */
  readonly sourcePath?: string;
}

export interface HashOptions {
  readonly signal?: AbortSignal;
  readonly algorithm?: HashAlgorithm;
}

/** A file that became visible at the destination, verified. */
export interface WriteResult {
  readonly entry: Entry;
  readonly hash: ContentHash;
}

/** One file of a bulk local copy: the source entry as listed. */
export interface LocalCopyItem {
  readonly source: Entry;
  readonly expectedHash?: ContentHash;
  /**
   * The destination holds a file of the same size that may have the same
   * content: compare, and write only when it differs.
   */
  readonly compare?: boolean;
}

export type LocalCopyOutcome =
  | {
      readonly ok: true;
      readonly item: LocalCopyItem;
      readonly result: WriteResult;
      /** Compared equal: nothing was written and no metadata was applied. */
      readonly unchanged: boolean;
    }
  | { readonly ok: false; readonly item: LocalCopyItem; readonly error: Error };

export interface LocalCopyOptions {
  readonly signal?: AbortSignal;
  /** The algorithm of the results' hashes (default sha256). */
  readonly algorithm?: HashAlgorithm;
  /** Bytes per second across the whole copy; undefined for no limit. */
  readonly bwlimit?: number;
  /** Called as bytes are written, for progress. */
  readonly onBytes?: (bytes: number) => void;
  /** Called as each file becomes visible, verified, or fails. */
  readonly onOutcome: (outcome: LocalCopyOutcome) => void;
}

export interface LocalDiffOptions {
  readonly signal?: AbortSignal;
  /** Two mtimes closer than this are equal. */
  readonly toleranceMs: number;
  /** Problems met on either side; listing goes on. */
  readonly onProblem: (side: 'source' | 'destination', error: TongbuError) => void;
}

/**
 * Two trees listed together: every directory, and the files and links that
 * differ (or exist on one side only). Entries equal on both sides by kind,
 * size, mtime, mode and link target are left out and only counted.
 */
export interface LocalDiff {
  readonly source: Map<Key, Entry>;
  readonly dest: Map<Key, Entry>;
  readonly unchanged: number;
}

export interface ReadOptions {
  readonly signal?: AbortSignal;
  /**
   * A local file that may hold an older version of the content (the
   * destination's copy). An endpoint that reads by chunks takes the chunks
   * it already finds there from it instead of fetching them; others ignore it.
   */
  readonly basis?: string;
}

export interface ListOptions {
  readonly signal?: AbortSignal;
  /**
   * Receives what cannot be listed (an unreadable directory, a name that is
   * not UTF-8, a special file) and listing goes on; without it, it throws.
   */
  readonly onProblem?: (error: TongbuError) => void;
}

export interface Endpoint {
  /** The URL or path the user gave, for messages. */
  readonly url: string;
  readonly capabilities: EndpointCapabilities;

  /**
   * Checks the endpoint can be used. A source must exist
   * (SOURCE_NOT_FOUND otherwise); a destination is created when
   * `create` is set.
   */
  open(options: { readonly create: boolean }): Promise<void>;

  /** Every entry below the root, in batches, in no particular order. */
  list(options?: ListOptions): AsyncIterable<readonly Entry[]>;

  /** One entry, or undefined when absent. */
  stat(key: Key): Promise<Entry | undefined>;

  /** The content of a file. */
  read(key: Key, options?: ReadOptions): AsyncIterable<Uint8Array>;

  /**
   * Hashes of files' content, in the order of `keys`, by `algorithm`
   * (default sha256). Reads the content unless the endpoint keeps hashes by
   * that algorithm.
   */
  hash(keys: readonly Key[], options?: HashOptions): Promise<ContentHash[]>;

  /**
   * Writes a file atomically: the bytes are hashed as they are written and
   * checked against the size and `expectedHash` before the file becomes
   * visible with its metadata; on any failure nothing is visible.
   */
  write(
    request: WriteRequest,
    content: AsyncIterable<Uint8Array>,
    options?: { readonly signal?: AbortSignal },
  ): Promise<WriteResult>;

  /** Creates a directory (and missing parents); no error when it exists. */
  mkdir(key: Key, meta: EntryMeta): Promise<void>;

  /** Creates or replaces a symlink; the target is stored, never followed. */
  symlink(key: Key, target: string, meta: EntryMeta): Promise<void>;

  /** Sets mtime and mode of an existing entry; returns it as stored. */
  setMeta(key: Key, meta: EntryMeta): Promise<Entry>;

  /** Removes a file, a link or an empty directory; no error when absent. */
  remove(key: Key, kind: EntryKind): Promise<void>;

  /**
   * Removes leftovers of interrupted writes (temp files) seen by the last
   * `list`. Called on a destination before a run writes to it.
   */
  cleanup(): Promise<number>;

  /** Makes every write so far durable (one filesystem sync, say). */
  flush(): Promise<void>;

  close(): Promise<void>;

  /**
   * With capabilities.atomicCommit: makes every write, link, directory and
   * removal since open visible at once. Undefined when there was nothing to
   * commit.
   */
  commit?(message?: string): Promise<CommitInfo | undefined>;

  /** With capabilities.localPath: the absolute path of the root. */
  readonly localPath?: string;

  /**
   * With capabilities.localCopy: lists a local source tree together with
   * this one, returning only what differs (see LocalDiff).
   */
  diffFromLocal?(sourceRoot: string, options: LocalDiffOptions): Promise<LocalDiff>;

  /**
   * With capabilities.localCopy: copies files from a local source tree.
   * Each outcome is reported through `onOutcome` once the file is visible
   * and verified (or failed); resolves when all items are done.
   */
  copyFromLocal?(
    sourceRoot: string,
    items: readonly LocalCopyItem[],
    options: LocalCopyOptions,
  ): Promise<void>;
}

/**
 * The hash a sync between two endpoints compares and records: what one of
 * them keeps (so it is not read again), else the fastest.
 */
export function syncHashAlgorithm(a: EndpointCapabilities, b: EndpointCapabilities): HashAlgorithm {
  return a.listedHashes[0] ?? b.listedHashes[0] ?? FAST_HASH;
}

/** The algorithm a write hashes its bytes with: the expected hash's, else the one asked for. */
export function writeAlgorithm(request: WriteRequest): HashAlgorithm {
  if (request.expectedHash !== undefined) return algorithmOf(request.expectedHash);
  return request.algorithm ?? DEFAULT_HASH;
}
