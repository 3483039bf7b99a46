import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { storeAddress } from '../../core/hash.js';
import {
  BatchDecoder,
  decodeBaseRequests,
  decodeBaseSignatures,
  decodeBatch,
  decodeDeltaFrames,
  encodeBaseRequests,
  encodeBaseSignatures,
  encodeBatch,
  encodeDeltaFrames,
  type BaseRequest,
  type ChunkFrame,
} from './protocol.js';

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

describe('delta messages', () => {
  const h = (n: number) => storeAddress(Buffer.from([n]));

  it('base requests, signature answers and delta frames decode to what was encoded', () => {
    const requests: BaseRequest[] = [
      { object: h(1), range: false, runBytes: 600_000, block: 64 },
      { object: h(2), range: true, prev: h(3), next: h(4), runBytes: 130_000, block: 1024 },
      { object: h(2), range: true, next: 'end', runBytes: 70_000, block: 1024 },
      { object: h(2), range: true, prev: h(5), runBytes: 1, block: 16 },
    ];
    expect(decodeBaseRequests(encodeBaseRequests(requests))).toEqual(requests);
    const answers = [
      { bases: [], block: 64, signatures: new Uint32Array(0) },
      {
        bases: [
          { hash: h(6), size: 70_000 },
          { hash: h(7), size: 1 },
        ],
        block: 1024,
        signatures: new Uint32Array([0, 1, 0xffffffff]),
      },
    ];
    expect(decodeBaseSignatures(encodeBaseSignatures(answers))).toEqual(answers);
    const frames = [
      { hash: h(8), bases: [h(6), h(7)], delta: Buffer.from([1, 2, 3]) },
      { hash: h(9), bases: [], delta: Buffer.alloc(0) },
    ];
    const back = decodeDeltaFrames(Buffer.concat(encodeDeltaFrames(frames)));
    expect(back.map((f) => ({ ...f, delta: Buffer.from(f.delta) }))).toEqual(frames);
  });

  it('name a message that ends too soon or carries unknown flags', () => {
    const one = encodeBaseRequests([
      { object: h(1), range: true, prev: h(2), runBytes: 5, block: 64 },
    ]);
    expect(() => decodeBaseRequests(one.subarray(0, 40))).toThrow(/base request truncated/);
    expect(() => decodeBaseRequests(Buffer.from([0x40, ...one.subarray(1)]))).toThrow(
      /flags 64 not understood/,
    );
    const answer = encodeBaseSignatures([{ bases: [], block: 64, signatures: new Uint32Array(4) }]);
    expect(() => decodeBaseSignatures(answer.subarray(0, answer.length - 1))).toThrow(
      /signature answer truncated/,
    );
  });
});
