/**
 * Chunking and hashing of large uploads in worker threads (chunk-worker.js),
 * one per core: FastCDC, the blake3 address of every chunk and the whole-content
 * hash are most of what an upload costs the client, and on the main thread
 * they would run one file at a time whatever the parallelism. A session is
 * one file on one worker; its pieces are chunked in order there, and come
 * back with the chunks they complete, bytes and all.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { fromSystemError, TongbuError } from '../../core/errors.js';
import {
  validateChunkerOptions,
  type ChunkBoundary,
  type ChunkerOptions,
} from '../../core/fastcdc.js';
import type { ContentHash, HashAlgorithm } from '../../core/hash.js';

export interface ChunkOpen {
  id: number;
  chunker: ChunkerOptions;
  algorithm: HashAlgorithm;
}

/** A local file as listed: the worker reads it and checks it did not change. */
export interface LocalFile {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
}

/**
 * The chunks of the version a file replaces, in order: where one of them
 * recurs at a cut of the new file, the worker checks its hash instead of
 * scanning for the next cut (the same cut, since a chunk's cut depends only
 * on its own bytes), and says the chunk is known.
 */
export interface OldChunks {
  readonly sizes: Uint32Array;
  /** 32-byte store digests, one after another. */
  readonly digests: Uint8Array;
}

export type ChunkRequest =
  | ({ type: 'open' } & ChunkOpen)
  | ({ type: 'file'; path: string; size: number; mtimeMs: number; old?: OldChunks } & ChunkOpen)
  | { type: 'piece'; id: number; piece: ArrayBuffer }
  | { type: 'finish'; id: number }
  /** A file session's batch was taken: the worker may read one block further. */
  | { type: 'more'; id: number }
  | { type: 'close'; id: number };

export type ChunkReply =
  | {
      type: 'chunks';
      id: number;
      cuts: ChunkBoundary[];
      hashes: ContentHash[];
      piece: ArrayBuffer;
    }
  | {
      type: 'cuts';
      id: number;
      cuts: ChunkBoundary[];
      hashes: ContentHash[];
      bytes: number;
      known?: boolean[];
    }
  | {
      type: 'end';
      id: number;
      cuts: ChunkBoundary[];
      hashes: ContentHash[];
      hash: ContentHash;
      known?: boolean[];
    }
  /** code: FILE_CHANGED, an errno name, or empty. */
  | { type: 'error'; id: number; code: string; message: string };

/** A chunk of a file session: where it is in the file, and its hash. */
export interface FileChunk {
  readonly offset: number;
  readonly length: number;
  readonly hash: ContentHash;
  /** A chunk of the old version (see OldChunks): the node has it. */
  readonly known?: boolean;
}

export interface HashedChunk {
  readonly hash: ContentHash;
  readonly bytes: Buffer;
}

const WORKER_URL = new URL('./chunk-worker.js', import.meta.url);
const EMPTY = Buffer.alloc(0);

/** What a lane routes replies to. */
interface Session {
  onReply(reply: ChunkReply): void;
  fail(error: TongbuError): void;
}

interface Lane {
  readonly worker: Worker;
  readonly sessions: Map<number, Session>;
}

export class ChunkPool {
  private readonly size: number;
  private readonly lanes: Lane[] = [];
  private nextId = 0;

  constructor(size = availableParallelism()) {
    this.size = Math.max(1, size);
  }

  /** A session for one file's content, pushed piece by piece, on the least busy worker. */
  open(chunker: ChunkerOptions, algorithm: HashAlgorithm): ChunkSession {
    const options = validateChunkerOptions(chunker);
    return this.start((id, worker, onClose) => {
      const session = new ChunkSession(id, worker, onClose);
      session.post({ type: 'open', id, chunker: { ...options }, algorithm });
      return session;
    });
  }

  /** A session for a local file that the worker reads itself; `old`: the version it replaces. */
  openFile(
    file: LocalFile,
    chunker: ChunkerOptions,
    algorithm: HashAlgorithm,
    old?: OldChunks,
  ): FileSession {
    const options = validateChunkerOptions(chunker);
    return this.start((id, worker, onClose) => {
      const session = new FileSession(file.path, onClose, (type: 'more' | 'close') => {
        worker.postMessage({ type, id } satisfies ChunkRequest);
      });
      const request: ChunkRequest = {
        type: 'file',
        id,
        chunker: { ...options },
        algorithm,
        path: file.path,
        size: file.size,
        mtimeMs: file.mtimeMs,
        ...(old ? { old } : {}),
      };
      worker.postMessage(request);
      return session;
    });
  }

  private start<S extends Session>(
    make: (id: number, worker: Worker, onClose: () => void) => S,
  ): S {
    let lane = this.lanes.reduce<Lane | undefined>(
      (best, l) => (best === undefined || l.sessions.size < best.sessions.size ? l : best),
      undefined,
    );
    if (lane === undefined || (lane.sessions.size > 0 && this.lanes.length < this.size)) {
      lane = this.spawn();
    }
    const { worker, sessions } = lane;
    const id = this.nextId++;
    if (sessions.size === 0) worker.ref();
    const session = make(id, worker, () => {
      sessions.delete(id);
      if (sessions.size === 0) worker.unref();
    });
    sessions.set(id, session);
    return session;
  }

  async close(): Promise<void> {
    const lanes = this.lanes.splice(0);
    await Promise.all(lanes.map((l) => l.worker.terminate()));
  }

  private spawn(): Lane {
    const worker = new Worker(WORKER_URL);
    const lane: Lane = { worker, sessions: new Map() };
    this.lanes.push(lane);
    worker.on('message', (reply: ChunkReply) => lane.sessions.get(reply.id)?.onReply(reply));
    const fail = (err: Error): void => {
      const at = this.lanes.indexOf(lane);
      if (at >= 0) this.lanes.splice(at, 1);
      const error = new TongbuError('INTERNAL', `chunk worker failed: ${err.message}`, {
        cause: err,
      });
      for (const s of lane.sessions.values()) s.fail(error);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
    return lane;
  }
}

interface Waiter {
  resolve(result: HashedChunk[] | Finished): void;
  reject(error: TongbuError): void;
}

interface Finished {
  readonly chunks: HashedChunk[];
  readonly hash: ContentHash;
}

/** One file's content going through a worker, piece by piece, in order. */
export class ChunkSession implements Session {
  private readonly id: number;
  private readonly worker: Worker;
  private readonly onClose: () => void;
  private readonly waiting: Waiter[] = [];
  /** Bytes of the chunk in progress, from absolute offset carryStart. */
  private carry: Buffer = EMPTY;
  private carryStart = 0;
  private failure: TongbuError | undefined;
  private closed = false;

  constructor(id: number, worker: Worker, onClose: () => void) {
    this.id = id;
    this.worker = worker;
    this.onClose = onClose;
  }

  /** The chunks this piece completes. The piece is copied: the caller keeps it. */
  push(piece: Uint8Array): Promise<HashedChunk[]> {
    const copy = new Uint8Array(piece.length);
    copy.set(piece);
    return this.ask({ type: 'piece', id: this.id, piece: copy.buffer }, [copy.buffer]) as Promise<
      HashedChunk[]
    >;
  }

  /** The last chunk(s) and the whole-content hash. */
  finish(): Promise<Finished> {
    return this.ask({ type: 'finish', id: this.id }) as Promise<Finished>;
  }

  /** Ends the session; a worker drops what it still holds of it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.failure === undefined) this.post({ type: 'close', id: this.id });
    this.fail(new TongbuError('ABORTED', 'chunk session closed'));
    this.onClose();
  }

  post(request: ChunkRequest, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(request, transfer);
  }

  /** Replies come in the order of the requests: each settles the oldest waiter. */
  onReply(reply: ChunkReply): void {
    const waiter = this.waiting.shift();
    switch (reply.type) {
      case 'chunks': {
        const piece = Buffer.from(reply.piece);
        this.carry = this.carry.length === 0 ? piece : Buffer.concat([this.carry, piece]);
        waiter?.resolve(this.take(reply.cuts, reply.hashes));
        return;
      }
      case 'end':
        waiter?.resolve({ chunks: this.take(reply.cuts, reply.hashes), hash: reply.hash });
        return;
      case 'error': {
        const error = new TongbuError('INTERNAL', `chunk worker: ${reply.message}`);
        waiter?.reject(error);
        this.fail(error);
        return;
      }
      case 'cuts':
        waiter?.reject(new TongbuError('INTERNAL', 'chunk worker: cuts for a stream session'));
    }
  }

  fail(error: TongbuError): void {
    this.failure ??= error;
    for (const w of this.waiting.splice(0)) w.reject(this.failure);
  }

  private ask(
    request: ChunkRequest,
    transfer: ArrayBuffer[] = [],
  ): Promise<HashedChunk[] | Finished> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.post(request, transfer);
    });
  }

  private take(cuts: readonly ChunkBoundary[], hashes: readonly ContentHash[]): HashedChunk[] {
    const chunks = cuts.map((cut, i) => {
      const at = cut.offset - this.carryStart;
      return { hash: hashes[i]!, bytes: this.carry.subarray(at, at + cut.length) };
    });
    const last = cuts.at(-1);
    if (last !== undefined) {
      const consumed = last.offset + last.length - this.carryStart;
      this.carry = this.carry.subarray(consumed);
      this.carryStart += consumed;
    }
    return chunks;
  }
}

/**
 * A local file chunked by a worker that reads it: its chunks come as the
 * worker reads, block by block; `next()` gives them in order, then null
 * once the whole-content hash is known.
 */
export class FileSession implements Session {
  private readonly path: string;
  private readonly onClose: () => void;
  private readonly tell: (type: 'more' | 'close') => void;
  private readonly ready: { chunks: FileChunk[]; bytes: number }[] = [];
  private waiter: (() => void) | undefined;
  private failure: TongbuError | undefined;
  private ended = false;
  private closed = false;
  /** The whole-content hash, once `next()` gave null. */
  hash: ContentHash | undefined;

  constructor(path: string, onClose: () => void, tell: (type: 'more' | 'close') => void) {
    this.path = path;
    this.onClose = onClose;
    this.tell = tell;
  }

  /** The next chunks and the bytes read for them, or null after the last. */
  async next(): Promise<{ chunks: FileChunk[]; bytes: number } | null> {
    while (this.ready.length === 0 && !this.ended && this.failure === undefined) {
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
    const batch = this.ready.shift();
    if (batch) {
      if (!this.ended) this.tell('more');
      return batch;
    }
    if (this.failure) throw this.failure;
    return null;
  }

  /** Ends the session; a worker still reading stops and closes the file. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.ended && this.failure === undefined) this.tell('close');
    this.fail(new TongbuError('ABORTED', `${this.path}: chunking stopped`));
    this.onClose();
  }

  onReply(reply: ChunkReply): void {
    switch (reply.type) {
      case 'cuts':
        this.ready.push({
          chunks: fileChunks(reply.cuts, reply.hashes, reply.known),
          bytes: reply.bytes,
        });
        break;
      case 'end':
        this.ready.push({ chunks: fileChunks(reply.cuts, reply.hashes, reply.known), bytes: 0 });
        this.hash = reply.hash;
        this.ended = true;
        this.onClose();
        break;
      case 'error':
        this.fail(
          reply.code === 'FILE_CHANGED'
            ? new TongbuError('FILE_CHANGED', `${this.path} changed while it was read`, {
                data: { path: this.path },
              })
            : fromSystemError(
                Object.assign(new Error(reply.message), { code: reply.code }),
                this.path,
                'cannot read',
              ),
        );
        break;
      case 'chunks':
        this.fail(new TongbuError('INTERNAL', 'chunk worker: piece reply for a file session'));
    }
    this.wake();
  }

  fail(error: TongbuError): void {
    this.failure ??= error;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}

function fileChunks(
  cuts: readonly ChunkBoundary[],
  hashes: readonly ContentHash[],
  known: readonly boolean[] | undefined,
): FileChunk[] {
  return cuts.map((c, i) => ({
    offset: c.offset,
    length: c.length,
    hash: hashes[i]!,
    ...(known?.[i] ? { known: true } : {}),
  }));
}
