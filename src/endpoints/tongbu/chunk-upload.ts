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
import { computeDelta, deltaBlockFor, encodeDelta, sliceDelta } from '../../core/delta.js';
import type { ChunkerOptions } from '../../core/fastcdc.js';
import { encodeManifest, type ChunkRef } from '../../store/manifest.js';
import { createChunkCutter, type CutChunk } from './chunk-cutter.js';
import type { ChunkPool, HashedChunk, LocalFile, OldChunks } from './chunk-pool.js';
import { DIGEST_BYTES, type BaseRequest, type ChunkFrame, type DeltaFrame } from './protocol.js';
import type { TongbuClient } from './tongbu-client.js';

/** A batch asks about this many chunks at most. */
const BATCH_CHUNKS = 512;
/** … or holds this many bytes. */
const BATCH_BYTES = 16 * 1024 * 1024;
/** Batches of one file in flight at once. */
const IN_FLIGHT = 4;

export interface UploadedContent {
  readonly hash: ContentHash;
  readonly size: number;
  /** The single chunk or the manifest; undefined for empty content. */
  readonly data?: ContentHash;
  readonly parts: number;
  /** Bytes actually sent: chunks the node lacked, whole or as deltas. */
  readonly sentBytes: number;
  /** Chunks sent as deltas. */
  readonly deltaChunks: number;
  /** The manifest's bytes, when the content took more than one chunk. */
  readonly manifest?: Buffer;
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
  /**
   * The content this replaces (the key's current version on the node): the
   * chunks the node lacks go as deltas against its chunks where that is
   * shorter.
   */
  readonly base?: DeltaBase;
  /**
   * With `file`: the chunks of the version it replaces. The worker checks
   * them where they recur instead of cutting there, and the node is not
   * asked about them.
   */
  readonly old?: OldChunks;
}

/** A file's current version on the node: its one chunk, or its manifest. */
export interface DeltaBase {
  readonly object: ContentHash;
  readonly manifest: boolean;
}

/** A chunk to offer the node: its bytes, or how to read them when the node lacks it. */
interface Offer {
  readonly hash: ContentHash;
  readonly size: number;
  readonly bytes?: Buffer;
  readonly load?: () => Promise<Buffer>;
  /** The file's manifest, offered after its chunks. */
  readonly manifest?: true;
  /** A chunk of the version the file replaces: the node has it. */
  readonly known?: true;
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
  const batcher = new Batcher(client, options.base);
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

  batcher.endOfFile();
  let data: ContentHash | undefined;
  let manifest: Buffer | undefined;
  if (refs.length === 1) data = refs[0]!.hash;
  else if (refs.length > 1) {
    manifest = encodeManifest(refs);
    data = storeAddress(manifest);
    await batcher.add({ hash: data, size: manifest.length, bytes: manifest, manifest: true });
  }
  await batcher.drain();
  return {
    hash,
    size,
    ...(data ? { data } : {}),
    parts: refs.length,
    sentBytes: batcher.sentBytes,
    deltaChunks: batcher.deltaChunks,
    ...(manifest ? { manifest } : {}),
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
  const session = pool.openFile(file, chunker, options.algorithm ?? DEFAULT_HASH, options.old);
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
          ...(c.known ? { known: true as const } : {}),
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
  private readonly base: DeltaBase | undefined;
  private frames: Offer[] = [];
  private bytes = 0;
  private readonly inFlight: Promise<void>[] = [];
  /** The last chunk of the file in an earlier batch: where the next batch's first run starts. */
  private prev: ContentHash | undefined;
  /** Every chunk of the file has been added; what follows is its manifest. */
  private ended = false;
  /** Chunks of this file the node lacked so far: the expected changes in its manifest. */
  private lackedParts = 0;
  sentBytes = 0;
  deltaChunks = 0;

  constructor(client: TongbuClient, base: DeltaBase | undefined) {
    this.client = client;
    this.base = base;
  }

  async add(frame: Offer): Promise<void> {
    this.frames.push(frame);
    this.bytes += frame.size;
    if (this.frames.length >= BATCH_CHUNKS || this.bytes >= BATCH_BYTES) await this.flush();
  }

  endOfFile(): void {
    this.ended = true;
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
    const context = { prev: this.prev, ended: this.ended };
    const parts = frames.filter((f) => !f.manifest);
    if (parts.length > 0) this.prev = parts[parts.length - 1]!.hash;
    if (this.inFlight.length >= IN_FLIGHT) await this.inFlight.shift();
    const send = this.send(frames, context);
    // A failure surfaces at the next flush or drain; keep it from going unhandled meanwhile.
    send.catch(() => undefined);
    this.inFlight.push(send);
  }

  private async send(
    frames: readonly Offer[],
    context: { prev: ContentHash | undefined; ended: boolean },
  ): Promise<void> {
    const asked = frames.filter((f) => !f.known).map((f) => f.hash);
    const missing = await this.client.missing([...new Set(asked)]);
    // Each lacked chunk once, in order; `lacked[i]`: frame i is sent.
    const lacked = frames.map((f) => !f.known && missing.delete(f.hash));
    if (missing.size > 0)
      throw new TongbuError('INTERNAL', 'node reported chunks it was not asked about');
    const runs = this.base && this.client.deltas ? this.runsOf(frames, lacked, context) : [];
    const viaDelta = new Set(runs.flatMap((r) => r.offers));
    const whole: ChunkFrame[] = [];
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]!;
      if (!lacked[i] || viaDelta.has(f)) continue;
      whole.push({ hash: f.hash, bytes: await bytesOf(f) });
      this.sentBytes += f.size;
    }
    const [, failed] = await Promise.all([
      this.client.putChunks(whole),
      runs.length > 0 ? this.sendDeltas(runs) : Promise.resolve([]),
    ]);
    if (failed.length > 0) {
      await this.client.putChunks(failed);
      for (const f of failed) this.sentBytes += f.bytes.length;
    }
  }

  /** Maximal runs of lacked chunks with their neighbours, and the manifest on its own. */
  private runsOf(
    frames: readonly Offer[],
    lacked: readonly boolean[],
    context: { prev: ContentHash | undefined; ended: boolean },
  ): Run[] {
    const base = this.base!;
    const runs: Run[] = [];
    let open: Offer[] = [];
    let prev = context.prev;
    const close = (next: ContentHash | 'end' | undefined): void => {
      if (open.length === 0) return;
      const runBytes = open.reduce((n, o) => n + o.size, 0);
      runs.push({
        offers: open,
        request: {
          object: base.object,
          range: base.manifest,
          runBytes,
          block: deltaBlockFor(runBytes, 1),
          ...(prev !== undefined ? { prev } : {}),
          ...(next !== undefined ? { next } : {}),
        },
      });
      this.lackedParts += open.length;
      open = [];
    };
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]!;
      if (f.manifest) {
        close(context.ended || this.ended ? 'end' : undefined);
        if (lacked[i] && base.manifest) {
          runs.push({
            offers: [f],
            request: {
              object: base.object,
              range: false,
              runBytes: f.size,
              block: deltaBlockFor(f.size, this.lackedParts),
            },
          });
        }
        continue;
      }
      if (lacked[i]) open.push(f);
      else {
        close(f.hash);
        prev = f.hash;
      }
    }
    close(context.ended ? 'end' : undefined);
    return runs;
  }

  /** Sends each run's chunks as deltas where that is shorter; returns those to send whole. */
  private async sendDeltas(runs: readonly Run[]): Promise<ChunkFrame[]> {
    let answers;
    try {
      answers = await this.client.signatures(runs.map((r) => r.request));
    } catch (err) {
      // A node from before deltas, or a token that may not read: whole chunks, from now on.
      if (
        !(err instanceof TongbuError) ||
        (err.code !== 'NOT_FOUND' && err.code !== 'PERMISSION_DENIED')
      )
        throw err;
      this.client.deltas = false;
      answers = runs.map(() => undefined);
    }
    const deltas: DeltaFrame[] = [];
    const plain: ChunkFrame[] = [];
    /** The bytes of each chunk sent as a delta, should the node fail to rebuild it. */
    const byHash = new Map<ContentHash, ChunkFrame>();
    for (let r = 0; r < runs.length; r++) {
      const run = runs[r]!;
      const bytes = await Promise.all(run.offers.map((o) => bytesOf(o)));
      const answer = answers[r];
      const bases = answer?.bases.map((b) => b.hash) ?? [];
      const baseLength = answer?.bases.reduce((n, b) => n + b.size, 0) ?? 0;
      const ops =
        answer && baseLength > 0
          ? computeDelta(
              bytes.length === 1 ? bytes[0]! : Buffer.concat(bytes),
              baseLength,
              answer.signatures,
              answer.block,
            )
          : undefined;
      let at = 0;
      run.offers.forEach((o, i) => {
        const chunk = bytes[i]!;
        const frame = { hash: o.hash, bytes: chunk };
        const delta = ops && encodeDelta(sliceDelta(ops, at, at + chunk.length), chunk);
        at += chunk.length;
        // A delta must save something over the chunk, counting the base list it names.
        const cost = delta ? delta.length + bases.length * DIGEST_BYTES + 2 : Infinity;
        if (delta && cost < chunk.length) {
          deltas.push({ hash: o.hash, bases, delta });
          byHash.set(o.hash, frame);
          this.sentBytes += cost;
          this.deltaChunks++;
        } else {
          plain.push(frame);
          this.sentBytes += chunk.length;
        }
      });
    }
    const [failed] = await Promise.all([
      this.client.putDeltas(deltas),
      this.client.putChunks(plain),
    ]);
    this.deltaChunks -= failed.length;
    const resend: ChunkFrame[] = [];
    for (const h of failed) {
      const frame = byHash.get(h);
      if (!frame)
        throw new TongbuError('INTERNAL', `node named ${h}, which was not sent as a delta`);
      resend.push(frame);
    }
    return resend;
  }
}

function bytesOf(offer: Offer): Promise<Buffer> {
  return offer.bytes ? Promise.resolve(offer.bytes) : offer.load!();
}

/** Lacked chunks of a file in a row, sent as deltas against one base. */
interface Run {
  readonly offers: readonly Offer[];
  readonly request: BaseRequest;
}
