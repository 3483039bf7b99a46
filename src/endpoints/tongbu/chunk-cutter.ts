/**
 * Cuts a stream into chunk byte slices with FastCDC, holding only the bytes
 * of the chunk in progress.
 */
import { createFastCdc, type ChunkerOptions } from '../../core/fastcdc.js';

export interface CutChunk {
  /** Offset of the chunk in the stream. */
  readonly offset: number;
  readonly bytes: Buffer;
}

export interface ChunkCutter {
  /** The chunks this piece completes. */
  push(piece: Uint8Array): CutChunk[];
  /** The last chunk(s), at the end of the stream. */
  finish(): CutChunk[];
}

export function createChunkCutter(chunker: ChunkerOptions): ChunkCutter {
  const cdc = createFastCdc(chunker);
  let carry: Buffer = Buffer.alloc(0);
  let carryStart = 0;
  const take = (bounds: readonly { offset: number; length: number }[]): CutChunk[] => {
    const out = bounds.map((b) => {
      const at = b.offset - carryStart;
      return { offset: b.offset, bytes: carry.subarray(at, at + b.length) };
    });
    const last = bounds[bounds.length - 1];
    if (last) {
      const consumed = last.offset + last.length - carryStart;
      carry = carry.subarray(consumed);
      carryStart += consumed;
    }
    return out;
  };
  return {
    push(piece) {
      carry = carry.length === 0 ? Buffer.from(piece) : Buffer.concat([carry, piece]);
      return take(cdc.push(piece));
    },
    finish: () => take(cdc.finish()),
  };
}
