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

/**
 * Where the base of a delta lies. `object`: the base is that whole object
 * (a one-chunk file's chunk, or a file's manifest). `range`: the chunks of
 * the file whose manifest is `object` that lie between `prev` (from the
 * file's start without it) and `next` (to the file's end with `next: 'end'`;
 * unknown without it, when the run ends a batch), about `runBytes` long.
 */
export interface BaseRequest {
  readonly object: ContentHash;
  readonly range: boolean;
  readonly prev?: ContentHash;
  readonly next?: ContentHash | 'end';
  readonly runBytes: number;
  /** The signatures' block size. */
  readonly block: number;
}

/** The base chosen for a request and the weak hashes of its blocks (none: no base). */
export interface BaseSignatures {
  readonly bases: readonly { readonly hash: ContentHash; readonly size: number }[];
  readonly block: number;
  readonly signatures: Uint32Array;
}

const RANGE = 1;
const PREV = 2;
const NEXT = 4;
const TO_END = 8;

/** Requests are [u8 flags][digest][prev digest?][next digest?][u32 runBytes][u32 block]. */
export function encodeBaseRequests(requests: readonly BaseRequest[]): Buffer {
  const parts: Buffer[] = [];
  for (const r of requests) {
    const digests = [r.object, r.prev, r.next === 'end' ? undefined : r.next].filter(
      (d): d is ContentHash => d !== undefined,
    );
    const out = Buffer.alloc(1 + digests.length * DIGEST_BYTES + 8);
    out[0] =
      (r.range ? RANGE : 0) |
      (r.prev ? PREV : 0) |
      (r.next && r.next !== 'end' ? NEXT : 0) |
      (r.next === 'end' ? TO_END : 0);
    digests.forEach((d, i) => out.write(storeDigestHex(d), 1 + i * DIGEST_BYTES, 'hex'));
    out.writeUInt32BE(r.runBytes, out.length - 8);
    out.writeUInt32BE(r.block, out.length - 4);
    parts.push(out);
  }
  return Buffer.concat(parts);
}

/** Reads a binary body front to back; BAD_ARGUMENT, naming `what`, when it ends too soon. */
class BodyReader {
  at = 0;
  constructor(
    private readonly body: Buffer,
    private readonly what: string,
  ) {}
  get done(): boolean {
    return this.at >= this.body.length;
  }
  private take(n: number): number {
    if (this.at + n > this.body.length)
      throw new TongbuError('BAD_ARGUMENT', `${this.what} truncated at byte ${this.at}`);
    const at = this.at;
    this.at += n;
    return at;
  }
  u8(): number {
    return this.body[this.take(1)]!;
  }
  u16(): number {
    return this.body.readUInt16BE(this.take(2));
  }
  u32(): number {
    return this.body.readUInt32BE(this.take(4));
  }
  digest(): ContentHash {
    return addressOfDigest(this.body, this.take(DIGEST_BYTES));
  }
  u32leArray(count: number): Uint32Array {
    const at = this.take(count * 4);
    const out = new Uint32Array(count);
    for (let i = 0; i < count; i++) out[i] = this.body.readUInt32LE(at + i * 4);
    return out;
  }
}

export function decodeBaseRequests(body: Buffer): BaseRequest[] {
  const out: BaseRequest[] = [];
  const r = new BodyReader(body, 'base request');
  while (!r.done) {
    const flags = r.u8();
    if (flags & ~(RANGE | PREV | NEXT | TO_END) || (flags & NEXT && flags & TO_END)) {
      throw new TongbuError('BAD_ARGUMENT', `base request flags ${flags} not understood`);
    }
    const object = r.digest();
    const prev = flags & PREV ? r.digest() : undefined;
    const next = flags & NEXT ? r.digest() : flags & TO_END ? ('end' as const) : undefined;
    const runBytes = r.u32();
    const block = r.u32();
    out.push({
      object,
      range: (flags & RANGE) !== 0,
      runBytes,
      block,
      ...(prev ? { prev } : {}),
      ...(next ? { next } : {}),
    });
  }
  return out;
}

/** Answers are [u16 bases]([digest][u32 size])*[u32 block][u32 count][u32 LE signatures]. */
export function encodeBaseSignatures(answers: readonly BaseSignatures[]): Buffer {
  const parts: Buffer[] = [];
  for (const a of answers) {
    const head = Buffer.alloc(2 + a.bases.length * (DIGEST_BYTES + 4) + 8);
    head.writeUInt16BE(a.bases.length, 0);
    a.bases.forEach((b, i) => {
      const at = 2 + i * (DIGEST_BYTES + 4);
      head.write(storeDigestHex(b.hash), at, 'hex');
      head.writeUInt32BE(b.size, at + DIGEST_BYTES);
    });
    head.writeUInt32BE(a.block, head.length - 8);
    head.writeUInt32BE(a.signatures.length, head.length - 4);
    const sigs = Buffer.alloc(a.signatures.length * 4);
    for (let i = 0; i < a.signatures.length; i++) sigs.writeUInt32LE(a.signatures[i]!, i * 4);
    parts.push(head, sigs);
  }
  return Buffer.concat(parts);
}

export function decodeBaseSignatures(body: Buffer): BaseSignatures[] {
  const out: BaseSignatures[] = [];
  const r = new BodyReader(body, 'signature answer');
  while (!r.done) {
    const n = r.u16();
    const bases: { hash: ContentHash; size: number }[] = [];
    for (let i = 0; i < n; i++) bases.push({ hash: r.digest(), size: r.u32() });
    const block = r.u32();
    const signatures = r.u32leArray(r.u32());
    out.push({ bases, block, signatures });
  }
  return out;
}

/** A chunk sent as a delta: its address, the base chunks in order, the delta's wire form. */
export interface DeltaFrame {
  readonly hash: ContentHash;
  readonly bases: readonly ContentHash[];
  readonly delta: Uint8Array;
}

/** Frames are [digest][u32 length of the rest][u16 bases][base digests][delta]. */
export function encodeDeltaFrames(frames: readonly DeltaFrame[]): Buffer[] {
  const parts: Buffer[] = [];
  for (const f of frames) {
    const head = Buffer.alloc(DIGEST_BYTES + 6 + f.bases.length * DIGEST_BYTES);
    head.write(storeDigestHex(f.hash), 0, 'hex');
    head.writeUInt32BE(2 + f.bases.length * DIGEST_BYTES + f.delta.length, DIGEST_BYTES);
    head.writeUInt16BE(f.bases.length, DIGEST_BYTES + 4);
    f.bases.forEach((b, i) =>
      head.write(storeDigestHex(b), DIGEST_BYTES + 6 + i * DIGEST_BYTES, 'hex'),
    );
    parts.push(head, Buffer.from(f.delta.buffer, f.delta.byteOffset, f.delta.byteLength));
  }
  return parts;
}

export function decodeDeltaFrames(body: Buffer): DeltaFrame[] {
  const out: DeltaFrame[] = [];
  for (const f of decodeBatch(body)) {
    const bytes = Buffer.from(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength);
    if (bytes.length < 2) throw new TongbuError('BAD_ARGUMENT', `delta frame ${f.hash} truncated`);
    const n = bytes.readUInt16BE(0);
    if (bytes.length < 2 + n * DIGEST_BYTES)
      throw new TongbuError('BAD_ARGUMENT', `delta frame ${f.hash} truncated`);
    const bases: ContentHash[] = [];
    for (let i = 0; i < n; i++) bases.push(addressOfDigest(bytes, 2 + i * DIGEST_BYTES));
    out.push({ hash: f.hash, bases, delta: bytes.subarray(2 + n * DIGEST_BYTES) });
  }
  return out;
}
