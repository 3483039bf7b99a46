/**
 * Uploads one file's content as chunks: FastCDC cuts the stream, every chunk
 * is hashed, the node is asked which of a batch of chunks it lacks, and only
 * those are sent. Dedup, delta and resume are this one mechanism: chunks the
 * node has (from an earlier version, another file, or an interrupted run) are
 * never sent again.
 */
import { open } from 'node:fs/promises';
import { fromSystemError, TongbuError } from '../../core/errors.js';
import {
  ContentHasher,
  DEFAULT_HASH,
  storeAddress,
  type ContentHash,
  type HashAlgorithm,
} from '../../core/hash.js';
import type { ChunkerOptions } from '../../core/fastcdc.js';
import { encodeManifest, type ChunkRef } from '../../store/manifest.js';
import { createChunkCutter, type CutChunk } from './chunk-cutter.js';
import type { ChunkPool, HashedChunk, LocalFile } from './chunk-pool.js';
import type { ChunkFrame } from './protocol.js';
import type { TongbuClient } from './tongbu-client.js';

/** A batch asks about this many chunks at most. */
const BATCH_CHUNKS = 512;
/** … or holds this many bytes. */
const BATCH_BYTES = 16 * 1024 * 1024;
/** Batches of one file in flight at once. */
const IN_FLIGHT = 2;

export interface UploadedContent {
  readonly hash: ContentHash;
  readonly size: number;
  /** The single chunk or the manifest; undefined for empty content. */
  readonly data?: ContentHash;
  readonly parts: number;
  /** Bytes actually sent (chunks the node lacked). */
  readonly sentBytes: number;
}

export interface UploadOptions {
  readonly signal?: AbortSignal;
  /** The algorithm of the whole-content hash (chunks are always addressed by STORE_HASH). */
  readonly algorithm?: HashAlgorithm;
  readonly onBytes?: (bytes: number) => void;
  /** Chunk and hash in these worker threads instead of this one. */
  readonly pool?: ChunkPool;
  /**
   * With a pool: the content's local file, read by a worker instead of
   * `content` (which stays unread); only the chunks the node lacks are
   * read again here, to send.
   */
  readonly file?: LocalFile;
}

/** A chunk to offer the node: its bytes, or how to read them when the node lacks it. */
interface Offer {
  readonly hash: ContentHash;
  readonly size: number;
  readonly bytes?: Buffer;
  readonly load?: () => Promise<Buffer>;
}

/** Pieces of one file in a worker's queue at once. */
const PIECES_AHEAD = 4;

type Take = (chunks: readonly Offer[]) => Promise<void>;

export async function uploadContent(
  client: TongbuClient,
  chunker: ChunkerOptions,
  content: AsyncIterable<Uint8Array>,
  options: UploadOptions = {},
): Promise<UploadedContent> {
  const refs: ChunkRef[] = [];
  const batcher = new Batcher(client);
  const take: Take = async (chunks) => {
    for (const c of chunks) {
      refs.push({ hash: c.hash, size: c.size });
      await batcher.add(c);
    }
  };
  const { hash, size } = !options.pool
    ? await chunkHere(chunker, content, options, take)
    : options.file
      ? await chunkFileInPool(options.pool, options.file, chunker, options, take, () =>
          batcher.drain(),
        )
      : await chunkInPool(options.pool, chunker, content, options, take);

  let data: ContentHash | undefined;
  if (refs.length === 1) data = refs[0]!.hash;
  else if (refs.length > 1) {
    const manifest = encodeManifest(refs);
    data = storeAddress(manifest);
    await batcher.add({ hash: data, size: manifest.length, bytes: manifest });
  }
  await batcher.drain();
  return {
    hash,
    size,
    ...(data ? { data } : {}),
    parts: refs.length,
    sentBytes: batcher.sentBytes,
  };
}

interface Hashed {
  readonly hash: ContentHash;
  readonly size: number;
}

async function chunkHere(
  chunker: ChunkerOptions,
  content: AsyncIterable<Uint8Array>,
  options: UploadOptions,
  take: Take,
): Promise<Hashed> {
  const cutter = createChunkCutter(chunker);
  const fileHash = new ContentHasher(options.algorithm);
  const hashed = (chunks: readonly CutChunk[]): Offer[] =>
    chunks.map((c) => ({ hash: storeAddress(c.bytes), size: c.bytes.length, bytes: c.bytes }));
  for await (const piece of content) {
    options.signal?.throwIfAborted();
    fileHash.update(piece);
    await take(hashed(cutter.push(piece)));
    options.onBytes?.(piece.length);
  }
  await take(hashed(cutter.finish()));
  return { hash: fileHash.digest(), size: fileHash.bytes };
}

/** Reading runs ahead of the worker by a few pieces; chunks are taken in order. */
async function chunkInPool(
  pool: ChunkPool,
  chunker: ChunkerOptions,
  content: AsyncIterable<Uint8Array>,
  options: UploadOptions,
  take: Take,
): Promise<Hashed> {
  const session = pool.open(chunker, options.algorithm ?? DEFAULT_HASH);
  try {
    const ahead: Promise<Offer[]>[] = [];
    let size = 0;
    for await (const piece of content) {
      options.signal?.throwIfAborted();
      const chunks = session.push(piece).then(offers);
      // Failures surface when the piece's turn comes; until then they are not unhandled.
      chunks.catch(() => undefined);
      ahead.push(chunks);
      size += piece.length;
      options.onBytes?.(piece.length);
      if (ahead.length >= PIECES_AHEAD) await take(await ahead.shift()!);
    }
    for (const chunks of ahead.splice(0)) await take(await chunks);
    const end = await session.finish();
    await take(offers(end.chunks));
    return { hash: end.hash, size };
  } finally {
    session.close();
  }
}

function offers(chunks: readonly HashedChunk[]): Offer[] {
  return chunks.map((c) => ({ hash: c.hash, size: c.bytes.length, bytes: c.bytes }));
}

/**
 * A worker reads and chunks the file; bytes are read here, through one
 * open handle, only for chunks the node lacks. If the file changed since
 * the worker hashed them, the node refuses the chunk (it checks every
 * hash) and the upload fails.
 */
async function chunkFileInPool(
  pool: ChunkPool,
  file: LocalFile,
  chunker: ChunkerOptions,
  options: UploadOptions,
  take: Take,
  drain: () => Promise<void>,
): Promise<Hashed> {
  const handle = await open(file.path, 'r').catch((err: unknown) => {
    throw fromSystemError(err, file.path, 'cannot read');
  });
  const load = async (offset: number, length: number): Promise<Buffer> => {
    const bytes = Buffer.allocUnsafe(length);
    const { bytesRead } = await handle.read(bytes, 0, length, offset);
    if (bytesRead !== length) {
      throw new TongbuError('FILE_CHANGED', `${file.path} changed while it was read`, {
        data: { path: file.path },
      });
    }
    return bytes;
  };
  const session = pool.openFile(file, chunker, options.algorithm ?? DEFAULT_HASH);
  try {
    for (;;) {
      options.signal?.throwIfAborted();
      const batch = await session.next();
      if (batch === null) break;
      await take(
        batch.chunks.map((c) => ({
          hash: c.hash,
          size: c.length,
          load: () => load(c.offset, c.length),
        })),
      );
      options.onBytes?.(batch.bytes);
    }
    // Every chunk read from the handle is sent before it closes.
    await drain();
    return { hash: session.hash!, size: file.size };
  } finally {
    session.close();
    await handle.close();
  }
}

/** Groups chunks, asks which are missing, sends those; a few batches in flight. */
class Batcher {
  private readonly client: TongbuClient;
  private frames: Offer[] = [];
  private bytes = 0;
  private readonly inFlight: Promise<void>[] = [];
  sentBytes = 0;

  constructor(client: TongbuClient) {
    this.client = client;
  }

  async add(frame: Offer): Promise<void> {
    this.frames.push(frame);
    this.bytes += frame.size;
    if (this.frames.length >= BATCH_CHUNKS || this.bytes >= BATCH_BYTES) await this.flush();
  }

  async drain(): Promise<void> {
    await this.flush();
    await Promise.all(this.inFlight.splice(0));
  }

  private async flush(): Promise<void> {
    if (this.frames.length === 0) return;
    const frames = this.frames;
    this.frames = [];
    this.bytes = 0;
    if (this.inFlight.length >= IN_FLIGHT) await this.inFlight.shift();
    const send = this.send(frames);
    // A failure surfaces at the next flush or drain; keep it from going unhandled meanwhile.
    send.catch(() => undefined);
    this.inFlight.push(send);
  }

  private async send(frames: readonly Offer[]): Promise<void> {
    const missing = await this.client.missing([...new Set(frames.map((f) => f.hash))]);
    const wanted: ChunkFrame[] = [];
    for (const f of frames) {
      if (!missing.delete(f.hash)) continue;
      wanted.push({ hash: f.hash, bytes: f.bytes ?? (await f.load!()) });
      this.sentBytes += f.size;
    }
    if (missing.size > 0)
      throw new TongbuError('INTERNAL', 'node reported chunks it was not asked about');
    await this.client.putChunks(wanted);
  }
}
