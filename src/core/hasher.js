// @ts-check
/**
 * Incremental hashers for worker threads, which load no TypeScript (hash.ts
 * is the main thread's side of the same thing).
 */
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * The store's address algorithm (hash.ts re-exports it as STORE_HASH), here
 * for workers, which load no TypeScript.
 * @type {'blake3'}
 */
export const STORE_ALGORITHM = 'blake3';

/**
 * The native blake3 binding, loaded on first use: a worker that never
 * hashes by blake3 starts without it.
 * @type {typeof import('@napi-rs/blake-hash') | undefined}
 */
let blake3;

/**
 * An incremental hasher of a ContentHash algorithm; `digest()` gives the
 * address form `<algorithm>:<hex>`.
 * @param {'sha256' | 'blake3'} algorithm
 * @returns {{ update(bytes: Uint8Array): void, digest(): import('./hash.js').ContentHash }}
 */
export function hasherOf(algorithm) {
  if (algorithm === 'blake3') {
    blake3 ??= /** @type {typeof import('@napi-rs/blake-hash')} */ (require('@napi-rs/blake-hash'));
    const b = new blake3.Blake3Hasher();
    return {
      // The binding takes Buffers: a view of the same bytes, no copy.
      update: (bytes) =>
        void b.update(
          Buffer.isBuffer(bytes)
            ? bytes
            : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length),
        ),
      digest: () => `blake3:${b.digest('hex')}`,
    };
  }
  const h = createHash(algorithm);
  return {
    update: (bytes) => void h.update(bytes),
    digest: () => `${algorithm}:${h.digest('hex')}`,
  };
}
