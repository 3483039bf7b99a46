/**
 * The wire formats shared by the tongbu node (server layer) and the tongbu://
 * endpoint: binary hash lists and chunk batches for bulk data, JSON for the
 * rest. docs/API.md describes the routes.
 */
import { TongbuError } from '../../core/errors.js';
import {
  addressOfDigest,
  storeDigestHex,
  type ContentHash,
  type HashAlgorithm,
} from '../../core/hash.js';
import type { ChunkerOptions } from '../../core/fastcdc.js';

export const API_PREFIX = '/v1';
export const DIGEST_BYTES = 32;
/** Largest body of a chunk batch. */
export const MAX_BATCH_BYTES = 64 * 1024 * 1024;
/** Largest JSON body (a commit of a few hundred thousand entries). */
export const MAX_JSON_BYTES = 256 * 1024 * 1024;

/**
 * How files are cut into chunks for the store: small enough that a change
 * costs little on the wire, large enough that a 1 GiB file is 16 Ki chunks.
 */
export const STORE_CHUNKER: Readonly<ChunkerOptions> = Object.freeze({
  minSize: 16 * 1024,
  avgSize: 64 * 1024,
  maxSize: 256 * 1024,
});

export interface HealthResponse {
  readonly ok: true;
  readonly version: string;
  readonly chunker: ChunkerOptions;
  /** The node's address algorithm (absent: an older node, sha256). */
  readonly hash?: HashAlgorithm;
}

export function encodeDigests(hashes: readonly ContentHash[]): Buffer {
  const out = Buffer.alloc(hashes.length * DIGEST_BYTES);
  hashes.forEach((h, i) => {
    out.write(storeDigestHex(h), i * DIGEST_BYTES, 'hex');
  });
  return out;
}

export function decodeDigests(bytes: Uint8Array): ContentHash[] {
  if (bytes.length % DIGEST_BYTES !== 0) {
    throw new TongbuError(
      'BAD_ARGUMENT',
      `hash list of ${bytes.length} bytes is not a multiple of 32`,
    );
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: ContentHash[] = [];
  for (let at = 0; at < buf.length; at += DIGEST_BYTES) {
    out.push(addressOfDigest(buf, at));
  }
  return out;
}

/** One chunk of a batch: its claimed hash and its bytes. */
export interface ChunkFrame {
  readonly hash: ContentHash;
  readonly bytes: Uint8Array;
}

/** A batch is frames of [32-byte digest][u32 big-endian length][bytes]. */
export function encodeBatch(frames: readonly ChunkFrame[]): Buffer[] {
  const parts: Buffer[] = [];
  for (const f of frames) {
    const head = Buffer.alloc(DIGEST_BYTES + 4);
    head.write(storeDigestHex(f.hash), 0, 'hex');
    head.writeUInt32BE(f.bytes.length, DIGEST_BYTES);
    parts.push(head, Buffer.from(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength));
  }
  return parts;
}

export function decodeBatch(body: Buffer): ChunkFrame[] {
  const decoder = new BatchDecoder();
  decoder.push(body);
  return decoder.end();
}

const EMPTY = Buffer.alloc(0);

/**
 * Decodes a batch as its bytes arrive, without gathering the body first: a
 * frame within one piece is a view of it, a frame across pieces gets a
 * buffer of its own size. Big bodies then cost no big fresh allocation.
 */
export class BatchDecoder {
  private readonly frames: ChunkFrame[] = [];
  private readonly head = Buffer.alloc(DIGEST_BYTES + 4);
  private headFill = 0;
  private hash: ContentHash | undefined;
  private body: Buffer | undefined;
  private bodyFill = 0;
  /** Bytes taken so far, for error messages. */
  private offset = 0;

  push(piece: Buffer): void {
    let at = 0;
    while (at < piece.length) {
      if (this.hash === undefined) {
        const headLeft = this.head.length - this.headFill;
        if (this.headFill === 0 && piece.length - at >= this.head.length) {
          this.startFrame(piece, at);
          at += this.head.length;
        } else {
          const n = Math.min(headLeft, piece.length - at);
          piece.copy(this.head, this.headFill, at, at + n);
          this.headFill += n;
          at += n;
          if (this.headFill < this.head.length) break;
          this.startFrame(this.head, 0);
          this.headFill = 0;
        }
        continue;
      }
      const len = this.head.readUInt32BE(DIGEST_BYTES);
      if (this.body === undefined && piece.length - at >= len) {
        this.frames.push({ hash: this.hash, bytes: piece.subarray(at, at + len) });
        this.hash = undefined;
        at += len;
        continue;
      }
      this.body ??= Buffer.allocUnsafe(len);
      const n = Math.min(len - this.bodyFill, piece.length - at);
      piece.copy(this.body, this.bodyFill, at, at + n);
      this.bodyFill += n;
      at += n;
      if (this.bodyFill === len) {
        this.frames.push({ hash: this.hash, bytes: this.body });
        this.hash = undefined;
        this.body = undefined;
        this.bodyFill = 0;
      }
    }
    this.offset += piece.length;
  }

  /** The frames; an error when the batch ends inside a frame. */
  end(): ChunkFrame[] {
    if (this.headFill > 0) {
      throw new TongbuError('BAD_ARGUMENT', `chunk batch truncated at byte ${this.offset}`);
    }
    if (this.hash !== undefined) {
      throw new TongbuError('BAD_ARGUMENT', `chunk ${this.hash} in batch truncated`);
    }
    return this.frames;
  }

  /** Reads the digest and length at `at`; the head buffer keeps the length. */
  private startFrame(from: Buffer, at: number): void {
    if (from !== this.head) from.copy(this.head, 0, at, at + this.head.length);
    const hash = addressOfDigest(this.head);
    if (this.head.readUInt32BE(DIGEST_BYTES) === 0) this.frames.push({ hash, bytes: EMPTY });
    else this.hash = hash;
  }
}

/** Keys in URLs: each segment percent-encoded, slashes kept. */
export function encodeKeyPath(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}
