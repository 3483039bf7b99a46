// @ts-check
/**
 * The optional native directory listing (native/dir-list.c, built by
 * `npm run build:native` at install): one call per directory returns every
 * name with its mode, size and mtime, read by fstatat on the open
 * directory. It halves the CPU a walk spends per entry, most of which, in
 * plain Node, goes to one lstat call and one Stats object (with four Dates)
 * per entry. Without a C compiler the module is absent and walks use
 * `fs.readdirSync` and `fs.lstatSync`; TONGBU_NATIVE_FS=0 forces that too.
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
 * @typedef {object} NativeDir
 * @property {(path: string) => NativeListing | null} listDir null when a
 *   name is not valid UTF-8; throws an Error with a Node-style `code` when
 *   the directory cannot be read
 */

/** @returns {NativeDir | undefined} */
function load() {
  if (process.env['TONGBU_NATIVE_FS'] === '0') return undefined;
  try {
    /** @type {NativeDir} */
    // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- a native module is untyped
    const native = createRequire(import.meta.url)('../../../build/Release/tongbu_native.node');
    return native;
  } catch {
    return undefined;
  }
}

export const nativeDir = load();
