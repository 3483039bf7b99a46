/**
 * FastCDC content-defined chunking (Xia et al., USENIX ATC 2016), with
 * normalized chunking at level 2 as in the 2020 TPDS paper. Cut points depend
 * only on content, so an insert near the start of a file shifts no later
 * chunk and successive checkpoints share most chunks.
 *
 * The chunker only finds boundaries; it never buffers data. A boundary is a
 * pure function of the stream's bytes: how the stream is split into pieces
 * does not change it.
 *
 * The gear table, the mask layout and the cut rule below are part of the
 * on-disk format: changing any of them re-chunks every stored file. The test
 * vectors in fastcdc.test.ts guard them.
 */
import { TongbuError } from './errors.js';

export interface ChunkerOptions {
  /** No chunk but the last is shorter; these bytes are skipped, not hashed. */
  minSize: number;
  /** Expected chunk size; the masks use the nearest power of two. */
  avgSize: number;
  /** No chunk is longer. */
  maxSize: number;
}

/** One chunk, in absolute offsets of the whole stream. */
export interface ChunkBoundary {
  offset: number;
  length: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** Sized for model checkpoints: chunks of 256 KiB – 4 MiB, about 1 MiB. */
export const DEFAULT_CHUNKER: Readonly<ChunkerOptions> = Object.freeze({
  minSize: 256 * KiB,
  avgSize: MiB,
  maxSize: 4 * MiB,
});

export const CHUNK_SIZE_LIMITS = Object.freeze({ min: 64, max: 1024 * MiB });

/** Normalization level: maskS has this many more bits than log2(avg), maskL fewer. */
const NORMALIZATION = 2;

/** Seed of the gear table: the ASCII bytes of "tongbu". */
const GEAR_SEED = 0x746f6e676275n;

/**
 * 256 pseudo-random 32-bit values: the high halves of the first 256 outputs
 * of SplitMix64 (Steele, Lea and Flood, OOPSLA 2014) seeded with GEAR_SEED.
 */
function makeGearTable(seed: bigint): Int32Array {
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
 */
function spreadMask(bits: number): number {
  let mask = 0;
  for (let k = 0; k < bits; k++) mask |= 1 << (31 - Math.floor((k * 32) / bits));
  return mask | 0;
}

function checkSize(name: keyof ChunkerOptions, value: unknown): number {
  const { min, max } = CHUNK_SIZE_LIMITS;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new TongbuError(
      'BAD_ARGUMENT',
      `chunker option ${name} must be an integer from ${min} to ${max} bytes, got ${String(value)}`,
      { data: { option: name, value } },
    );
  }
  return value;
}

/** Returns frozen, checked options, or throws BAD_ARGUMENT naming the bad option. */
export function validateChunkerOptions(options: ChunkerOptions): Readonly<ChunkerOptions> {
  const minSize = checkSize('minSize', options.minSize);
  const avgSize = checkSize('avgSize', options.avgSize);
  const maxSize = checkSize('maxSize', options.maxSize);
  if (minSize >= avgSize) {
    throw new TongbuError(
      'BAD_ARGUMENT',
      `chunker option minSize (${minSize}) must be less than avgSize (${avgSize})`,
      { data: { option: 'minSize', value: minSize, avgSize } },
    );
  }
  if (maxSize <= avgSize) {
    throw new TongbuError(
      'BAD_ARGUMENT',
      `chunker option maxSize (${maxSize}) must be greater than avgSize (${avgSize})`,
      { data: { option: 'maxSize', value: maxSize, avgSize } },
    );
  }
  return Object.freeze({ minSize, avgSize, maxSize });
}

/**
 * A streaming FastCDC chunker. Feed the stream with push() in pieces of any
 * size, then call finish(); each call returns the chunks completed by it.
 *
 * For each chunk: skip minSize bytes unhashed, then hash byte by byte from a
 * zero state and cut after the first byte where `h & mask` is zero, using
 * maskS (harder) while the chunk is shorter than avgSize and maskL (easier)
 * after, and cut at maxSize if neither matched.
 */
export class FastCdc {
  readonly options: Readonly<ChunkerOptions>;
  private readonly maskS: number;
  private readonly maskL: number;
  /** Absolute offset where the current chunk starts. */
  private chunkStart = 0;
  /** Absolute offset of the next byte to arrive. */
  private position = 0;
  /** Gear hash over the hashed bytes of the current chunk so far. */
  private hash = 0;
  private finished = false;

  constructor(options: ChunkerOptions = DEFAULT_CHUNKER) {
    this.options = validateChunkerOptions(options);
    const bits = Math.round(Math.log2(this.options.avgSize));
    this.maskS = spreadMask(bits + NORMALIZATION);
    this.maskL = spreadMask(bits - NORMALIZATION);
  }

  /** Bytes pushed so far. */
  get bytes(): number {
    return this.position;
  }

  push(data: Uint8Array): ChunkBoundary[] {
    if (this.finished) throw new TongbuError('BAD_ARGUMENT', 'FastCdc.push called after finish');
    const out: ChunkBoundary[] = [];
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

  /** Ends the stream; returns the last chunk, if any bytes remain. */
  finish(): ChunkBoundary[] {
    if (this.finished) return [];
    this.finished = true;
    return this.position > this.chunkStart ? [this.cut(this.position)] : [];
  }

  private cut(end: number): ChunkBoundary {
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
   */
  private scan(data: Uint8Array, from: number, to: number, mask: number): number {
    const gear = GEAR;
    let h = this.hash;
    let i = from;
    for (const stop = to - 8; i <= stop; i += 8) {
      h = ((h << 1) + gear[data[i]!]!) | 0;
      if ((h & mask) === 0) return i + 1;
      h = ((h << 1) + gear[data[i + 1]!]!) | 0;
      if ((h & mask) === 0) return i + 2;
      h = ((h << 1) + gear[data[i + 2]!]!) | 0;
      if ((h & mask) === 0) return i + 3;
      h = ((h << 1) + gear[data[i + 3]!]!) | 0;
      if ((h & mask) === 0) return i + 4;
      h = ((h << 1) + gear[data[i + 4]!]!) | 0;
      if ((h & mask) === 0) return i + 5;
      h = ((h << 1) + gear[data[i + 5]!]!) | 0;
      if ((h & mask) === 0) return i + 6;
      h = ((h << 1) + gear[data[i + 6]!]!) | 0;
      if ((h & mask) === 0) return i + 7;
      h = ((h << 1) + gear[data[i + 7]!]!) | 0;
      if ((h & mask) === 0) return i + 8;
    }
    for (; i < to; i++) {
      h = ((h << 1) + gear[data[i]!]!) | 0;
      if ((h & mask) === 0) return i + 1;
    }
    this.hash = h;
    return -to;
  }
}

export function createFastCdc(options: ChunkerOptions = DEFAULT_CHUNKER): FastCdc {
  return new FastCdc(options);
}

/** Chunks a whole buffer at once; the same result as streaming it. */
export function chunkBuffer(
  data: Uint8Array,
  options: ChunkerOptions = DEFAULT_CHUNKER,
): ChunkBoundary[] {
  const chunker = new FastCdc(options);
  const chunks = chunker.push(data);
  for (const chunk of chunker.finish()) chunks.push(chunk);
  return chunks;
}
