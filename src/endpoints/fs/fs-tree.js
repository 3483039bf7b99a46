// @ts-check
/**
 * Tree walks of the filesystem endpoint: a plain walk of one tree (in its
 * worker threads), and a paired walk of a source and a destination tree
 * (in the main thread, and in workers that help with a large one) that
 * reports only what differs, so that a sync where little changed never
 * handles the unchanged entries one by one. Nothing is followed: a symlink
 * is listed as a link. Entries travel packed (see WalkBatch in
 * fs-worker-protocol.ts).
 */
import { TextDecoder } from 'node:util';
import * as fs from 'node:fs';
import { constants } from 'node:os';
import { TEMP_PREFIX } from './fs-temp.js';
import { native } from '../../core/native.js';

const BATCH = 4096;
const FILE = 0;
const DIR = 1;
const LINK = 2;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
/** errno numbers by name, for entries the native listing could not stat. */
const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));
/** Where a directory of a paired walk is read: one tree, or both (see WalkDir). */
export const SOURCE = 0;
export const DEST = 1;
export const BOTH = 2;

/** Accumulates entries of one side and posts them in packed batches. */
export class Batcher {
  /**
   * @param {{ postMessage(batch: import('./fs-worker-protocol.js').WalkBatch): void }} port
   *   a worker's port, or in the main thread what takes the batches directly
   * @param {number} id
   * @param {0 | 1} side
   */
  constructor(port, id, side) {
    this.port = port;
    this.id = id;
    this.side = side;
    /** @type {string[]} */ this.keys = [];
    /** @type {number[]} */ this.nums = [];
    /** @type {number[]} */ this.links = [];
    /** @type {string[]} */ this.targets = [];
    /** @type {string[]} */ this.temps = [];
    /** @type {import('./fs-worker-protocol.js').WorkerError[]} */ this.problems = [];
  }

  /**
   * @param {string} key
   * @param {Item} item
   */
  add(key, item) {
    if (item.kind === LINK) {
      this.links.push(this.keys.length);
      this.targets.push(item.target);
    }
    this.keys.push(key);
    this.nums.push(item.kind, item.size, item.mtimeMs, item.mode);
    if (this.keys.length >= BATCH) this.post();
  }

  post() {
    const { id, side, keys, links, targets, temps, problems } = this;
    const nums = Float64Array.from(this.nums);
    this.port.postMessage({ type: 'walk', id, side, keys, nums, links, targets, temps, problems });
    this.keys = [];
    this.nums = [];
    this.links = [];
    this.targets = [];
    this.temps = [];
    this.problems = [];
  }
}

/**
 * @typedef {{ name: string, kind: number, size: number, mtimeMs: number, mode: number, target: string }} Item
 */

/**
 * The entries of one directory, sorted by nothing; problems go to `out`.
 * A missing directory has no entries.
 * @param {string} dirPath
 * @param {Batcher} out
 * @returns {Item[]}
 */
function readDir(dirPath, out) {
  if (native !== undefined) {
    let listing;
    try {
      listing = native.listDir(dirPath);
    } catch (err) {
      return unreadable(err, dirPath, out);
    }
    if (listing !== null) return nativeItems(dirPath, listing, out);
  }
  /** @type {string[]} */
  let names;
  try {
    names = fs.readdirSync(dirPath);
  } catch (err) {
    return unreadable(err, dirPath, out);
  }
  if (names.some((name) => name.includes('\uFFFD'))) names = validNames(dirPath, out);
  /** @type {Item[]} */
  const items = [];
  for (const name of names) {
    const full = `${dirPath}/${name}`;
    if (name.startsWith(TEMP_PREFIX)) {
      out.temps.push(full);
      continue;
    }
    let st;
    try {
      st = fs.lstatSync(full, { throwIfNoEntry: false });
    } catch (err) {
      out.problems.push(systemError(err, full, 'stat'));
      continue;
    }
    if (st === undefined) continue; // gone since readdir
    const item = itemOf(name, full, st.mode, st.size, st.mtimeMs, out);
    if (item) items.push(item);
  }
  return items;
}

/**
 * The item of one entry from its st_mode, size and mtime: a directory, a
 * file or a link (its target read); anything else is a problem.
 * @param {string} name
 * @param {string} full
 * @param {number} stMode
 * @param {number} size
 * @param {number} mtimeMs
 * @param {Batcher} out
 * @returns {Item | undefined}
 */
function itemOf(name, full, stMode, size, mtimeMs, out) {
  const type = stMode & S_IFMT;
  if (type === S_IFDIR)
    return { name, kind: DIR, size: 0, mtimeMs, mode: stMode & 0o7777, target: '' };
  if (type === S_IFREG)
    return { name, kind: FILE, size, mtimeMs, mode: stMode & 0o7777, target: '' };
  if (type !== S_IFLNK) {
    out.problems.push({ code: 'SPECIAL', path: full });
    return undefined;
  }
  try {
    return { name, kind: LINK, size: 0, mtimeMs, mode: 0, target: fs.readlinkSync(full) };
  } catch (err) {
    out.problems.push(systemError(err, full, 'read link'));
    return undefined;
  }
}

/**
 * A directory that could not be read has no entries; unless it is missing
 * (or no longer a directory), that is a problem.
 * @param {unknown} err
 * @param {string} dirPath
 * @param {Batcher} out
 * @returns {Item[]}
 */
function unreadable(err, dirPath, out) {
  const code = /** @type {NodeJS.ErrnoException} */ (err).code;
  if (code !== 'ENOENT' && code !== 'ENOTDIR')
    out.problems.push(systemError(err, dirPath, 'read directory'));
  return [];
}

/**
 * readDir's items from a native listing: the same entries, kinds and
 * problems as the lstat path gives.
 * @param {string} dirPath
 * @param {import('../../core/native.js').NativeListing} listing
 * @param {Batcher} out
 * @returns {Item[]}
 */
function nativeItems(dirPath, { names, info }, out) {
  /** @type {Item[]} */
  const items = [];
  for (let i = 0; i < names.length; i++) {
    const name = /** @type {string} */ (names[i]);
    const full = `${dirPath}/${name}`;
    if (name.startsWith(TEMP_PREFIX)) {
      out.temps.push(full);
      continue;
    }
    const stMode = /** @type {number} */ (info[3 * i]);
    if (stMode < 0) {
      const errno = ERRNO_NAMES.get(-stMode) ?? 'EIO';
      out.problems.push({
        code: 'SYSTEM',
        errno,
        path: full,
        action: 'stat',
        message: `${errno}, lstat '${full}'`,
      });
      continue;
    }
    const item = itemOf(
      name,
      full,
      stMode,
      /** @type {number} */ (info[3 * i + 1]),
      /** @type {number} */ (info[3 * i + 2]),
      out,
    );
    if (item) items.push(item);
  }
  return items;
}

/**
 * Posts every entry of the tree at `root`.
 * @param {string} root
 * @param {Batcher} out
 * @param {() => boolean} aborted
 */
export function walkTree(root, out, aborted) {
  walkDirs({ srcRoot: root, dstRoot: root, toleranceMs: 0 }, [['', SOURCE]], out, out, aborted);
}

/**
 * Walks a source and a destination tree together, taking directories from
 * `dirs`, a stack of [key, side], and adding those below them: BOTH
 * compares a directory's entries in the two trees, SOURCE or DEST lists a
 * directory that only one tree has. Directories are always posted (both
 * sides); files and links only when they differ or exist on one side.
 * Stops when `dirs` is empty or, after a directory, `stop()` says so,
 * leaving the rest on `dirs`; returns how many entries were equal and left
 * out.
 * @param {{ srcRoot: string, dstRoot: string, toleranceMs: number }} roots
 * @param {import('./fs-worker-protocol.js').WalkDir[]} dirs
 * @param {Batcher} src
 * @param {Batcher} dst
 * @param {() => boolean} stop
 */
export function walkDirs(roots, dirs, src, dst, stop) {
  let unchanged = 0;
  while (dirs.length > 0) {
    const [key, side] = /** @type {import('./fs-worker-protocol.js').WalkDir} */ (dirs.pop());
    if (side === BOTH) unchanged += compareDir(roots, key, dirs, src, dst);
    else if (side === SOURCE) listDir(roots.srcRoot, key, SOURCE, dirs, src);
    else listDir(roots.dstRoot, key, DEST, dirs, dst);
    if (stop()) break;
  }
  return unchanged;
}

/**
 * Posts the entries of one directory of one tree; its subdirectories go on `dirs`.
 * @param {string} root
 * @param {string} key
 * @param {typeof SOURCE | typeof DEST} side
 * @param {import('./fs-worker-protocol.js').WalkDir[]} dirs
 * @param {Batcher} out
 */
function listDir(root, key, side, dirs, out) {
  for (const item of readDir(key === '' ? root : `${root}/${key}`, out)) {
    const child = key === '' ? item.name : `${key}/${item.name}`;
    out.add(child, item);
    if (item.kind === DIR) dirs.push([child, side]);
  }
}

/**
 * Compares one directory of the two trees; its subdirectories go on
 * `dirs`. Returns how many entries were equal and left out.
 * @param {{ srcRoot: string, dstRoot: string, toleranceMs: number }} roots
 * @param {string} key
 * @param {import('./fs-worker-protocol.js').WalkDir[]} dirs
 * @param {Batcher} src
 * @param {Batcher} dst
 */
function compareDir(roots, key, dirs, src, dst) {
  let unchanged = 0;
  const a = readDir(key === '' ? roots.srcRoot : `${roots.srcRoot}/${key}`, src);
  const b = readDir(key === '' ? roots.dstRoot : `${roots.dstRoot}/${key}`, dst);
  const other = new Map(b.map((item) => [item.name, item]));
  for (const s of a) {
    const child = key === '' ? s.name : `${key}/${s.name}`;
    const d = other.get(s.name);
    other.delete(s.name);
    if (s.kind !== DIR && d !== undefined && same(s, d, roots.toleranceMs)) {
      unchanged++;
      continue;
    }
    src.add(child, s);
    if (d !== undefined) dst.add(child, d);
    if (s.kind === DIR) dirs.push([child, d?.kind === DIR ? BOTH : SOURCE]);
    else if (d?.kind === DIR) dirs.push([child, DEST]);
  }
  for (const d of other.values()) {
    const child = key === '' ? d.name : `${key}/${d.name}`;
    dst.add(child, d);
    if (d.kind === DIR) dirs.push([child, DEST]);
  }
  return unchanged;
}

/**
 * Equal as the planner would judge them without reading content.
 * @param {Item} s
 * @param {Item} d
 * @param {number} tolerance
 */
function same(s, d, tolerance) {
  if (s.kind !== d.kind || Math.abs(s.mtimeMs - d.mtimeMs) > tolerance) return false;
  if (s.kind === LINK) return s.target === d.target;
  return s.size === d.size && s.mode === d.mode;
}

/**
 * @param {unknown} err
 * @param {string} path
 * @param {string} action
 * @returns {import('./fs-worker-protocol.js').WorkerError}
 */
function systemError(err, path, action) {
  const e = /** @type {NodeJS.ErrnoException} */ (err);
  return { code: 'SYSTEM', errno: e.code ?? '', path, action, message: e.message };
}

/**
 * The names of a directory read as bytes: those that are UTF-8, decoded;
 * each of the others reported by its own bytes.
 * @param {string} dirPath
 * @param {Batcher} out
 * @returns {string[]}
 */
function validNames(dirPath, out) {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  /** @type {string[]} */
  const names = [];
  for (const raw of fs.readdirSync(dirPath, { encoding: 'buffer' })) {
    try {
      names.push(decoder.decode(raw));
    } catch {
      out.problems.push({ code: 'NOT_UTF8', path: dirPath, raw });
    }
  }
  return names;
}
