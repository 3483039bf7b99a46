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
 * The cut rule is in fastcdc-core.js, plain JavaScript that worker threads
 * load too; this module checks options and names the types.
 */
import { TongbuError } from './errors.js';
import { FastCdcCore } from './fastcdc-core.js';

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
 * A streaming FastCDC chunker (the cut rule is in fastcdc-core.js). Feed the
 * stream with push() in pieces of any size, then call finish(); each call
 * returns the chunks completed by it.
 */
export class FastCdc extends FastCdcCore {
  declare readonly options: Readonly<ChunkerOptions>;

  constructor(options: ChunkerOptions = DEFAULT_CHUNKER) {
    super(validateChunkerOptions(options));
  }

  protected override misuse(): Error {
    return new TongbuError('BAD_ARGUMENT', 'FastCdc.push called after finish');
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
