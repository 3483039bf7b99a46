/**
 * `checksumRows` of canonical.ts, computed from the rows' text forms without
 * a BigInt per row: the md5 of each row's hash text (same layout as
 * `rowHashText`), its first 60 bits split into a high 28-bit and a low
 * 32-bit part summed as doubles, folded into a bigint every 2^20 rows (so
 * neither double passes 2^53). The result is exactly checksumRows'.
 */
import { hash } from 'node:crypto';
import type { SegmentChecksum } from '../table/canonical.js';

const FOLD_EVERY = 1 << 20;
const TWO_32 = 2 ** 32;

export class RowHashSum {
  private count = 0;
  private high = 0;
  private low = 0;
  private folded = 0n;

  /**
   * Adds one row given the text form of each value, or null for NULL.
   * `texts` is read, not kept.
   */
  add(texts: readonly (string | null)[]): void {
    let out = '';
    for (const text of texts) out += text === null ? '~' : `${Buffer.byteLength(text)}:${text}`;
    this.addHashText(out);
  }

  /** Adds one row given its `rowHashText`. */
  addHashText(text: string): void {
    const digest = hash('md5', text, 'buffer');
    const a = digest.readUInt32BE(0);
    const b = digest.readUInt32BE(4);
    // first 60 bits = a * 2^28 + (b >>> 4) = (a >>> 4) * 2^32 + ((a & 15) * 2^28 + (b >>> 4))
    this.high += a >>> 4;
    this.low += (a & 15) * 0x10000000 + (b >>> 4);
    if (++this.count % FOLD_EVERY === 0) this.fold();
  }

  private fold(): void {
    this.folded += BigInt(this.high) * BigInt(TWO_32) + BigInt(this.low);
    this.high = 0;
    this.low = 0;
  }

  result(): SegmentChecksum {
    this.fold();
    return { count: this.count, sum: this.folded };
  }
}
