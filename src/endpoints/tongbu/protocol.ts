/**
 * The wire formats shared by the tongbu node (server layer) and the tongbu://
 * endpoint: binary hash lists and chunk batches for bulk data, JSON for the
 * rest. docs/API.md describes the routes.
 */
import { TongbuError } from '../../core/errors.js';
import { parseHash, type ContentHash } from '../../core/hash.js';
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
}

export function encodeDigests(hashes: readonly ContentHash[]): Buffer {
  const out = Buffer.alloc(hashes.length * DIGEST_BYTES);
  hashes.forEach((h, i) => {
    const { algorithm, hex } = parseHash(h);
    if (algorithm !== 'sha256') throw new TongbuError('BAD_ARGUMENT', `unsupported hash ${h}`);
    out.write(hex, i * DIGEST_BYTES, 'hex');
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
    out.push(`sha256:${buf.toString('hex', at, at + DIGEST_BYTES)}`);
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
    head.write(parseHash(f.hash).hex, 0, 'hex');
    head.writeUInt32BE(f.bytes.length, DIGEST_BYTES);
    parts.push(head, Buffer.from(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength));
  }
  return parts;
}

export function decodeBatch(body: Buffer): ChunkFrame[] {
  const frames: ChunkFrame[] = [];
  let at = 0;
  while (at < body.length) {
    if (body.length - at < DIGEST_BYTES + 4) {
      throw new TongbuError('BAD_ARGUMENT', `chunk batch truncated at byte ${at}`);
    }
    const hash: ContentHash = `sha256:${body.toString('hex', at, at + DIGEST_BYTES)}`;
    const len = body.readUInt32BE(at + DIGEST_BYTES);
    const start = at + DIGEST_BYTES + 4;
    if (start + len > body.length) {
      throw new TongbuError('BAD_ARGUMENT', `chunk ${hash} in batch truncated`);
    }
    frames.push({ hash, bytes: body.subarray(start, start + len) });
    at = start + len;
  }
  return frames;
}

/** Keys in URLs: each segment percent-encoded, slashes kept. */
export function encodeKeyPath(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}
