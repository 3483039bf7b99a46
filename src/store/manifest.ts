/**
 * A manifest is the ordered chunk list of one file, stored as an object. The
 * binary form is `TBM2`, a u32 count, then per chunk its 32-byte blake3
 * digest (STORE_HASH) and a u32 length (big-endian): 36 bytes a chunk, so a
 * 1 GiB file of 64 KiB chunks costs a 590 KB manifest and the catalog
 * nothing. (`TBM1` was the same with sha256 digests, before stores moved
 * to blake3 addresses.)
 */
import { TongbuError } from '../core/errors.js';
import { addressOfDigest, storeDigestHex, type ContentHash } from '../core/hash.js';

export interface ChunkRef {
  readonly hash: ContentHash;
  readonly size: number;
}

const MAGIC = 0x54424d32; // "TBM2"
const RECORD = 36;

export function encodeManifest(chunks: readonly ChunkRef[]): Buffer {
  const out = Buffer.alloc(8 + chunks.length * RECORD);
  out.writeUInt32BE(MAGIC, 0);
  out.writeUInt32BE(chunks.length, 4);
  chunks.forEach((c, i) => {
    const at = 8 + i * RECORD;
    out.write(storeDigestHex(c.hash), at, 'hex');
    out.writeUInt32BE(c.size, at + 32);
  });
  return out;
}

export function decodeManifest(bytes: Uint8Array): ChunkRef[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = buf.length >= 8 ? buf.readUInt32BE(4) : -1;
  if (buf.length < 8 || buf.readUInt32BE(0) !== MAGIC || buf.length !== 8 + count * RECORD) {
    throw new TongbuError('BAD_ARGUMENT', 'not a manifest object');
  }
  const chunks: ChunkRef[] = new Array<ChunkRef>(count);
  for (let i = 0; i < count; i++) {
    const at = 8 + i * RECORD;
    chunks[i] = {
      hash: addressOfDigest(buf, at),
      size: buf.readUInt32BE(at + 32),
    };
  }
  return chunks;
}
