// @ts-check
/**
 * The FastCDC cut rule itself (see fastcdc.ts for the format and the
 * checked options): plain JavaScript, so that worker threads, which load
 * no TypeScript, chunk with the very same code as the main thread. The
 * inner loop runs in C (native/gear-scan.c) when the native module is
 * built, some three times faster; the same test vectors hold either way.
 *
 * The gear table, the mask layout and the cut rule below are part of the
 * on-disk format: changing any of them re-chunks every stored file. The test
 * vectors in fastcdc.test.ts guard them.
 */

import { native } from './native.js';

/** @typedef {{ minSize: number, avgSize: number, maxSize: number }} CutOptions */
/** @typedef {{ offset: number, length: number }} Cut */

/** Normalization level: maskS has this many more bits than log2(avg), maskL fewer. */
const NORMALIZATION = 2;

/** Seed of the gear table: the ASCII bytes of "tongbu". */
const GEAR_SEED = 0x746f6e676275n;

/**
 * 256 pseudo-random 32-bit values: the high halves of the first 256 outputs
 * of SplitMix64 (Steele, Lea and Flood, OOPSLA 2014) seeded with GEAR_SEED.
 * @param {bigint} seed
 */
function makeGearTable(seed) {
  const table = new Int32Array(256);
  let state = seed;
  for (let i = 0; i < 256; i++) {
    state = BigInt.asUintN(64, state + 0x9e3779b97f4a7c15n);
    let z = state;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    z ^= z >> 31n;
    table[i] = Number(BigInt.asIntN(32, z >> 32n));
  }
  return table;
}

const GEAR = makeGearTable(GEAR_SEED);

/**
 * A mask of `bits` one-bits spread evenly over the 32-bit hash, always
 * including bit 31. With the gear hash `h = (h << 1) + gear[b]`, bit k depends
 * on the last k + 1 bytes, so bit 31 makes the window 32 bytes, and spreading
 * the bits (rather than packing them low) is what the FastCDC paper found to
 * keep the chunk-size distribution close to the expected one.
 * @param {number} bits
 */
function spreadMask(bits) {
  let mask = 0;
  for (let k = 0; k < bits; k++) mask |= 1 << (31 - Math.floor((k * 32) / bits));
  return mask | 0;
}

/**
 * A streaming FastCDC chunker over options already checked. Feed the
 * stream with push() in pieces of any size, then call finish(); each call
 * returns the chunks completed by it.
 *
 * For each chunk: skip minSize bytes unhashed, then hash byte by byte from a
 * zero state and cut after the first byte where `h & mask` is zero, using
 * maskS (harder) while the chunk is shorter than avgSize and maskL (easier)
 * after, and cut at maxSize if neither matched.
 */
export class FastCdcCore {
  /** @param {Readonly<CutOptions>} options */
  constructor(options) {
    /** @readonly */ this.options = options;
    const bits = Math.round(Math.log2(options.avgSize));
    /** @private @readonly */ this.maskS = spreadMask(bits + NORMALIZATION);
    /** @private @readonly */ this.maskL = spreadMask(bits - NORMALIZATION);
    /** Absolute offset where the current chunk starts. @private */
    this.chunkStart = 0;
    /** Absolute offset of the next byte to arrive. @private */
    this.position = 0;
    /** Gear hash over the hashed bytes of the current chunk so far. @private */
    this.hash = 0;
    /** @private */
    this.finished = false;
    /** The gear hash crossing into the native scan and back. @private */
    this.state = new Int32Array(1);
  }

  /** Bytes pushed so far. */
  get bytes() {
    return this.position;
  }

  /**
   * What push after finish throws.
   * @protected
   * @returns {Error}
   */
  misuse() {
    return new Error('FastCdc.push called after finish');
  }

  /**
   * @param {Uint8Array} data
   * @returns {Cut[]}
   */
  push(data) {
    if (this.finished) throw this.misuse();
    /** @type {Cut[]} */
    const out = [];
    const { minSize, avgSize, maxSize } = this.options;
    const base = this.position;
    const end = data.length;
    let i = 0;
    while (i < end) {
      // Where the current chunk starts, relative to data (negative when it
      // started in an earlier piece).
      const start = this.chunkStart - base;
      const hashFrom = start + minSize;
      if (i < hashFrom) {
        i = Math.min(hashFrom, end);
        continue;
      }
      const normal = start + avgSize;
      const limit = start + maxSize;
      const r =
        i < normal
          ? this.scan(data, i, Math.min(normal, end), this.maskS)
          : this.scan(data, i, Math.min(limit, end), this.maskL);
      if (r > 0) {
        i = r;
        out.push(this.cut(base + r));
      } else {
        i = -r;
        if (i === limit) out.push(this.cut(base + limit));
      }
    }
    this.position = base + end;
    return out;
  }

  /**
   * The length of the first chunk of `data`, which starts at a cut: what
   * push would cut there, or -1 when `data` ends before a cut (shorter than
   * maxSize: more bytes are needed, or at the end of the stream the rest is
   * one chunk). Leaves the streaming state alone.
   * @param {Uint8Array} data
   * @returns {number}
   */
  nextCut(data) {
    const { minSize, avgSize, maxSize } = this.options;
    const saved = this.hash;
    this.hash = 0;
    try {
      const normal = Math.min(avgSize, data.length);
      if (minSize < normal) {
        const r = this.scan(data, minSize, normal, this.maskS);
        if (r > 0) return r;
      }
      const from = Math.max(minSize, avgSize);
      const limit = Math.min(maxSize, data.length);
      if (from < limit) {
        const r = this.scan(data, from, limit, this.maskL);
        if (r > 0) return r;
      }
      return data.length >= maxSize ? maxSize : -1;
    } finally {
      this.hash = saved;
    }
  }

  /**
   * Ends the stream; returns the last chunk, if any bytes remain.
   * @returns {Cut[]}
   */
  finish() {
    if (this.finished) return [];
    this.finished = true;
    return this.position > this.chunkStart ? [this.cut(this.position)] : [];
  }

  /**
   * @private
   * @param {number} end
   * @returns {Cut}
   */
  cut(end) {
    const chunk = { offset: this.chunkStart, length: end - this.chunkStart };
    this.chunkStart = end;
    this.hash = 0;
    return chunk;
  }

  /**
   * Hashes data[from..to) (to > from). Returns the index just past the byte
   * where the hash matched `mask`, or, with no match, minus `to` (never 0, so
   * the sign tells the two apart). Unrolled by eight: this loop is the
   * chunker's whole cost.
   * @private
   * @param {Uint8Array} data
   * @param {number} from
   * @param {number} to
   * @param {number} mask
   */
  scan(data, from, to, mask) {
    if (native !== undefined) {
      this.state[0] = this.hash;
      const r = native.gearScan(data, from, to, mask, this.state);
      if (r < 0) this.hash = /** @type {number} */ (this.state[0]);
      return r;
    }
    const gear = /** @type {number[]} */ (/** @type {unknown} */ (GEAR));
    let h = this.hash;
    let i = from;
    for (const stop = to - 8; i <= stop; i += 8) {
      h = ((h << 1) + /** @type {number} */ (gear[/** @type {number} */ (data[i])])) | 0;
      if ((h & mask) === 0) return i + 1;
      h = ((h << 1) + /** @type {number} */ (gear[/** @type {number} */ (data[i + 1])])) | 0;
      if ((h & mask) === 0) return i + 2;
      h = ((h << 1) + /** @type {number} */ (gear[/** @type {number} */ (data[i + 2])])) | 0;
      if ((h & mask) === 0) return i + 3;
      h = ((h << 1) + /** @type {number} */ (gear[/** @type {number} */ (data[i + 3])])) | 0;
      if ((h & mask) === 0) return i + 4;
      h = ((h << 1) + /** @type {number} */ (gear[/** @type {number} */ (data[i + 4])])) | 0;
      if ((h & mask) === 0) return i + 5;
      h = ((h << 1) + /** @type {number} */ (gear[/** @type {number} */ (data[i + 5])])) | 0;
      if ((h & mask) === 0) return i + 6;
      h = ((h << 1) + /** @type {number} */ (gear[/** @type {number} */ (data[i + 6])])) | 0;
      if ((h & mask) === 0) return i + 7;
      h = ((h << 1) + /** @type {number} */ (gear[/** @type {number} */ (data[i + 7])])) | 0;
      if ((h & mask) === 0) return i + 8;
    }
    for (; i < to; i++) {
      h = ((h << 1) + /** @type {number} */ (gear[/** @type {number} */ (data[i])])) | 0;
      if ((h & mask) === 0) return i + 1;
    }
    this.hash = h;
    return -to;
  }
}
