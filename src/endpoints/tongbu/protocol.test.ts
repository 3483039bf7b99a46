import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { storeAddress } from '../../core/hash.js';
import { BatchDecoder, decodeBatch, encodeBatch, type ChunkFrame } from './protocol.js';

const frame = (bytes: Uint8Array): ChunkFrame => ({ hash: storeAddress(bytes), bytes });
const plain = (frames: readonly ChunkFrame[]) =>
  frames.map((f) => ({ hash: f.hash, bytes: Buffer.from(f.bytes).toString('hex') }));

describe('chunk batches', () => {
  it('decode the same however the body is split into pieces', () => {
    const frames = fc.array(fc.uint8Array({ minLength: 0, maxLength: 3000 }), { maxLength: 8 });
    const cuts = fc.array(fc.integer({ min: 0, max: 30_000 }), { maxLength: 12 });
    fc.assert(
      fc.property(frames, cuts, (contents, at) => {
        const want = contents.map(frame);
        const body = Buffer.concat(encodeBatch(want));
        const points = [...new Set(at.map((x) => x % (body.length + 1)))].sort((a, b) => a - b);
        const decoder = new BatchDecoder();
        let from = 0;
        for (const p of [...points, body.length]) {
          decoder.push(body.subarray(from, p));
          from = p;
        }
        expect(plain(decoder.end())).toEqual(plain(want));
      }),
    );
  });

  it('name a batch that ends inside a frame head or body', () => {
    const body = Buffer.concat(encodeBatch([frame(Buffer.from('hello')), frame(Buffer.alloc(0))]));
    expect(plain(decodeBatch(body))).toHaveLength(2);
    expect(() => decodeBatch(body.subarray(0, 20))).toThrow(/truncated at byte 20/);
    expect(() => decodeBatch(body.subarray(0, 38))).toThrow(/in batch truncated/);
  });
});
