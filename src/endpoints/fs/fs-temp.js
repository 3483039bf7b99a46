// @ts-check
/**
 * Temp file names of the filesystem endpoint, shared with its worker
 * threads (plain JavaScript, like fs-worker.js). A write goes to a temp file
 * beside its destination and is renamed into place; `cleanup` removes the
 * temp files an interrupted run left behind.
 */

/** Temp files start with this; walks skip them and report them for cleanup. */
export const TEMP_PREFIX = '.tongbu-tmp-';

/**
 * Temp file number `n` of a run in directory `dir`. `tag` is the run's own
 * (TEMP_PREFIX and random characters): names are unique across processes,
 * and a number, not a path, is all a pending copy needs to keep.
 * @param {string} dir
 * @param {string} tag
 * @param {number} n
 */
export function tempPath(dir, tag, n) {
  return `${dir}/${tag}${n.toString(36)}`;
}

/**
 * Where a copy of `key` into the tree at `root` lands, and its temp file
 * number `n` beside it.
 * @param {string} root
 * @param {string} key
 * @param {string} tag
 * @param {number} n
 */
export function copyTarget(root, key, tag, n) {
  const dst = `${root}/${key}`;
  return { dst, tmp: tempPath(dst.slice(0, dst.lastIndexOf('/')), tag, n) };
}
