/**
 * Block delta of one byte string against another that only the other side
 * holds, as rsync does for whole files, here for the chunks a store lacks.
 * The holder of the base sends a weak 32-bit hash of each of its blocks;
 * the holder of the new bytes slides a rolling hash over them and describes
 * them as copies of base blocks and literal bytes. The weak hash can match
 * blocks that differ: the receiver checks the rebuilt bytes against their
 * store address and asks for the literal bytes when they do not agree, so
 * no second, strong per-block hash goes over the wire.
 *
 * The weak hash of a window w[0..b) is sum(T[w[i]] * P^(b-1-i)) mod 2^32,
 * with T a fixed table of random words (so every bit of the hash mixes every
 * bit of the bytes) and P odd. Signatures cover the base's whole blocks from
 * its start, then one block ending at its end when the length is not a
 * multiple of the block size, so a new run that ends like the base matches
 * to its last byte.
 */
import { TongbuError } from './errors.js';
import { native } from './native.js';

/** Smallest and largest block size either side accepts. */
export const MIN_DELTA_BLOCK = 16;
export const MAX_DELTA_BLOCK = 64 * 1024;

const P = 0x01000193;

/** T: splitmix32 from a fixed seed. Both ends of the protocol must use the same table. */
const T = (() => {
  const t = new Int32Array(256);
  let s = 0x9e3779b9;
  for (let i = 0; i < 256; i++) {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    t[i] = z ^ (z >>> 16);
  }
  return t;
})();

function checkBlock(block: number): void {
  if (
    !Number.isInteger(block) ||
    block < MIN_DELTA_BLOCK ||
    block > MAX_DELTA_BLOCK ||
    (block & (block - 1)) !== 0
  ) {
    throw new TongbuError(
      'BAD_ARGUMENT',
      `delta block size ${block} is not a power of two in ${MIN_DELTA_BLOCK}..${MAX_DELTA_BLOCK}`,
    );
  }
}

function windowHash(bytes: Uint8Array, from: number, block: number): number {
  let h = 0;
  for (let i = from, end = from + block; i < end; i++) h = (Math.imul(h, P) + T[bytes[i]!]!) | 0;
  return h;
}

/** P^(block-1) mod 2^32: the weight of the byte leaving the window. */
function outWeight(block: number): number {
  let w = 1;
  for (let i = 1; i < block; i++) w = Math.imul(w, P);
  return w;
}

/** How many signatures a base of `length` bytes has at this block size. */
export function signatureCount(length: number, block: number): number {
  if (length < block) return 0;
  return Math.floor(length / block) + (length % block === 0 ? 0 : 1);
}

/** Where signature `index` starts in a base of `length` bytes. */
function signatureOffset(index: number, length: number, block: number): number {
  const full = Math.floor(length / block);
  return index < full ? index * block : length - block;
}

/** The weak hashes of the base's blocks (see the module comment for which blocks). */
export function blockSignatures(base: Uint8Array, block: number): Uint32Array {
  checkBlock(block);
  const count = signatureCount(base.length, block);
  const out = new Uint32Array(count);
  if (native && count > 0) {
    native.weakHashes(base, block, T, out);
    return out;
  }
  for (let i = 0; i < count; i++) {
    out[i] = windowHash(base, signatureOffset(i, base.length, block), block) >>> 0;
  }
  return out;
}

/** One step of a delta: copy `length` bytes from the base at `from`, or take them literally. */
export type DeltaOp =
  | { readonly copy: true; readonly from: number; readonly length: number }
  | { readonly copy: false; readonly at: number; readonly length: number };

/**
 * Describes `next` as copies from a base of `baseLength` bytes whose block
 * signatures are `signatures`, and literal runs of `next` (by offset).
 * Adjacent copies merge.
 */
export function computeDelta(
  next: Uint8Array,
  baseLength: number,
  signatures: Uint32Array,
  block: number,
): DeltaOp[] {
  checkBlock(block);
  if (signatures.length !== signatureCount(baseLength, block)) {
    throw new TongbuError(
      'BAD_ARGUMENT',
      `${signatures.length} block signatures for a base of ${baseLength} bytes`,
    );
  }
  const ops: DeltaOp[] = [];
  const n = next.length;
  if (signatures.length === 0 || n < block) {
    if (n > 0) ops.push({ copy: false, at: 0, length: n });
    return ops;
  }
  // A bit per value of the hash's top 16 bits: most windows are rejected by one load.
  const filter = new Uint8Array(1 << 13);
  const first = new Map<number, number>();
  for (let i = 0; i < signatures.length; i++) {
    const h = signatures[i]!;
    filter[h >>> 19]! |= 1 << ((h >>> 16) & 7);
    if (!first.has(h)) first.set(h, i);
  }
  const out = outWeight(block);
  const tail = baseLength % block === 0 ? -1 : signatures.length - 1;
  const copy = (from: number, length: number): void => {
    const last = ops[ops.length - 1];
    if (last?.copy && last.from + last.length === from) {
      ops[ops.length - 1] = { copy: true, from: last.from, length: last.length + length };
    } else ops.push({ copy: true, from, length });
  };
  const hashAt = native
    ? (at: number): number => native!.weakHash(next, at, block, T)
    : (at: number): number => windowHash(next, at, block);
  const state = new Int32Array(1);
  let literalFrom = 0;
  let i = 0;
  let expect = -1;
  let h = hashAt(0);
  for (;;) {
    if (native) {
      // C rolls to the next window the filter lets through.
      state[0] = h;
      const at = native.weakScan(next, i, block, out, T, filter, state);
      if (at < 0) break;
      i = at;
      h = state[0];
    }
    const u = h >>> 0;
    let match = -1;
    if ((filter[u >>> 19]! & (1 << ((u >>> 16) & 7))) !== 0) {
      match = expect >= 0 && signatures[expect] === u ? expect : (first.get(u) ?? -1);
    }
    if (match >= 0) {
      if (i > literalFrom) ops.push({ copy: false, at: literalFrom, length: i - literalFrom });
      copy(signatureOffset(match, baseLength, block), block);
      i += block;
      literalFrom = i;
      expect = match + 1 < signatures.length && match !== tail ? match + 1 : -1;
      if (i + block > n) break;
      h = hashAt(i);
      continue;
    }
    if (i + block >= n) break;
    h = (Math.imul(h - Math.imul(T[next[i]!]!, out), P) + T[next[i + block]!]!) | 0;
    i++;
  }
  // Fewer than a block left after a copy: they may be the base's last bytes.
  if (literalFrom < n && literalFrom === i && n >= block) {
    const last = signatures[signatures.length - 1]!;
    const left = n - literalFrom;
    if (hashAt(n - block) >>> 0 === last) {
      copy(baseLength - left, left);
      literalFrom = n;
    }
  }
  if (literalFrom < n) ops.push({ copy: false, at: literalFrom, length: n - literalFrom });
  return dropLoneCopies(ops, block);
}

/**
 * A copy of one block between literal bytes is more often a weak hash that
 * matched different bytes than a block that survived alone among changed
 * ones; such a miss costs the whole chunk again. Those copies become literal.
 */
function dropLoneCopies(ops: readonly DeltaOp[], block: number): DeltaOp[] {
  const out: DeltaOp[] = [];
  let at = 0;
  ops.forEach((op, i) => {
    const lone =
      op.copy && op.length <= block && !ops[i - 1]?.copy && !ops[i + 1]?.copy && ops.length > 1;
    const last = out[out.length - 1];
    if (op.copy && !lone) out.push(op);
    else if (last && !last.copy) out[out.length - 1] = { ...last, length: last.length + op.length };
    else out.push({ copy: false, at, length: op.length });
    at += op.length;
  });
  return out;
}

/**
 * The ops of `ops` (over a string of which `[from, to)` is wanted) that
 * cover `[from, to)`, with literal offsets made relative to `from`.
 */
export function sliceDelta(ops: readonly DeltaOp[], from: number, to: number): DeltaOp[] {
  const out: DeltaOp[] = [];
  let at = 0;
  for (const op of ops) {
    const start = at;
    const end = at + op.length;
    at = end;
    if (end <= from) continue;
    if (start >= to) break;
    const lo = Math.max(start, from);
    const hi = Math.min(end, to);
    out.push(
      op.copy
        ? { copy: true, from: op.from + (lo - start), length: hi - lo }
        : { copy: false, at: lo - from, length: hi - lo },
    );
  }
  return out;
}

/**
 * The wire form of a delta of `next`: per op a varint of (length << 1 |
 * copy), then a copy's base offset as a varint, or a literal's bytes.
 */
export function encodeDelta(ops: readonly DeltaOp[], next: Uint8Array): Buffer {
  let size = 0;
  for (const op of ops) size += 10 + (op.copy ? 0 : op.length);
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  const varint = (v: number): void => {
    while (v >= 0x80) {
      out[at++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    out[at++] = v;
  };
  for (const op of ops) {
    varint(op.length * 2 + (op.copy ? 1 : 0));
    if (op.copy) varint(op.from);
    else {
      out.set(next.subarray(op.at, op.at + op.length), at);
      at += op.length;
    }
  }
  return out.subarray(0, at);
}

/** Rebuilds bytes from a delta's wire form and its base; at most `maxLength` bytes. */
export function applyDelta(delta: Uint8Array, base: Uint8Array, maxLength: number): Buffer {
  const parts: Uint8Array[] = [];
  let total = 0;
  let at = 0;
  const varint = (): number => {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 5; i++) {
      if (at >= delta.length) break;
      const byte = delta[at++]!;
      v += (byte & 0x7f) * scale;
      if (byte < 0x80) return v;
      scale *= 128;
    }
    throw new TongbuError('BAD_ARGUMENT', `delta truncated or malformed at byte ${at}`);
  };
  while (at < delta.length) {
    const head = varint();
    const length = Math.floor(head / 2);
    total += length;
    if (total > maxLength) {
      throw new TongbuError('BAD_ARGUMENT', `delta rebuilds more than ${maxLength} bytes`);
    }
    if (head % 2 === 1) {
      const from = varint();
      if (from + length > base.length) {
        throw new TongbuError(
          'BAD_ARGUMENT',
          `delta copies bytes ${from}..${from + length} of a base of ${base.length}`,
        );
      }
      parts.push(base.subarray(from, from + length));
    } else {
      if (at + length > delta.length)
        throw new TongbuError('BAD_ARGUMENT', 'delta literal truncated');
      parts.push(delta.subarray(at, at + length));
      at += length;
    }
  }
  return Buffer.concat(parts, total);
}

/**
 * A block size for a base of `length` bytes expected to differ in about
 * `changes` places: each change costs about a block of literal bytes, each
 * block 4 bytes of signature, so the sum is least near sqrt(4 * length / changes).
 */
export function deltaBlockFor(length: number, changes: number): number {
  const ideal = Math.sqrt((4 * Math.max(length, 1)) / Math.max(changes, 1));
  let b = MIN_DELTA_BLOCK;
  while (b < MAX_DELTA_BLOCK && b * 1.41 < ideal) b *= 2;
  return b;
}
