// @ts-check
/**
 * The optional native module (native/*.c, built by `npm run build:native`
 * at install): a directory listing for tree walks, FastCDC's inner
 * loop, and the block delta's weak hash. Without a C compiler it is absent and the callers use plain
 * JavaScript; TONGBU_NATIVE=0 forces that too.
 */
import { createRequire } from 'node:module';
import process from 'node:process';

/**
 * @typedef {object} NativeListing
 * @property {string[]} names in directory order
 * @property {Float64Array} info three numbers per name: st_mode (or -errno
 *   when that entry could not be stat'ed), size, mtimeMs
 */

/**
 * @typedef {object} NativeModule
 * @property {(path: string) => NativeListing | null} listDir the entries of
 *   one directory; null when a name is not valid UTF-8; throws an Error with
 *   a Node-style `code` when the directory cannot be read
 * @property {(data: Uint8Array, from: number, to: number, mask: number, state: Int32Array) => number} gearScan
 *   FastCDC's scan from gear hash state[0]: the index past the first match,
 *   or minus `to` with the hash left in state[0]
 * @property {(data: Uint8Array, from: number, block: number, table: Int32Array) => number} weakHash
 *   the block delta's weak hash of data[from, from + block), as an int32
 * @property {(data: Uint8Array, block: number, table: Int32Array, out: Uint32Array) => void} weakHashes
 *   the block delta's weak hash of each whole block of data, and of its
 *   last block when `out` has room for one more
 * @property {(data: Uint8Array, from: number, block: number, outWeight: number, table: Int32Array, filter: Uint8Array, state: Int32Array) => number} weakScan
 *   rolls the weak hash (state[0], of the window at `from`) forward to the
 *   first window whose hash passes `filter`: its start, or -1
 */

/** @returns {NativeModule | undefined} */
function load() {
  if (process.env['TONGBU_NATIVE'] === '0') return undefined;
  try {
    /** @type {NativeModule} */
    // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- a native module is untyped
    const native = createRequire(import.meta.url)('../../build/Release/tongbu_native.node');
    return native;
  } catch {
    return undefined;
  }
}

export const native = load();
