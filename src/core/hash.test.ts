import { describe, expect, it } from 'vitest';
import { algorithmOf, ContentHasher, hashBytes, parseHash } from './hash.js';

const abc = Buffer.from('abc');

describe('content hashes', () => {
  it('match the published test vectors of sha256 and blake3', () => {
    expect(hashBytes(abc)).toBe(
      'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(hashBytes(abc, 'blake3')).toBe(
      'blake3:6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85',
    );
    // A plain Uint8Array (not a Buffer), as some endpoints hand over.
    expect(hashBytes(new Uint8Array([0x61, 0x62, 0x63]), 'blake3')).toBe(hashBytes(abc, 'blake3'));
  });

  it('hash the same incrementally as in one piece', () => {
    const bytes = Buffer.alloc(1_000_003, 7);
    for (const algorithm of ['sha256', 'blake3'] as const) {
      const h = new ContentHasher(algorithm);
      for (let at = 0; at < bytes.length; at += 65_521) h.update(bytes.subarray(at, at + 65_521));
      expect(h.digest()).toBe(hashBytes(bytes, algorithm));
      expect(h.bytes).toBe(bytes.length);
    }
  });

  it('parse both algorithms and reject others', () => {
    const b3 = hashBytes(abc, 'blake3');
    expect(parseHash(b3).algorithm).toBe('blake3');
    expect(algorithmOf(b3)).toBe('blake3');
    expect(() => parseHash(`md5:${'0'.repeat(32)}`)).toThrow(/invalid content hash/);
  });
});
