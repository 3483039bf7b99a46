// @ts-check
/**
 * Worker thread of the local filesystem endpoint. It copies and hashes files
 * with synchronous calls, which cost a few microseconds each here instead of
 * a trip through the event loop, and it hashes on its own core.
 *
 * Plain JavaScript so that Node can start it from the sources and from dist/
 * alike; it imports only Node, its JavaScript neighbours and core/hasher.js. Messages
 * are typed in fs-worker-protocol.ts.
 */
import { Buffer } from 'node:buffer';
import * as fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { hasherOf } from '../../core/hasher.js';
import { copyTarget } from './fs-temp.js';
import { Batcher, walkDirs, walkTree } from './fs-tree.js';

if (!parentPort) throw new Error('fs-worker must run as a worker thread');
const port = parentPort;

const BLOCK = 4 * 1024 * 1024;
const buffer = Buffer.allocUnsafe(BLOCK);
/** Shared abort flag: non-zero means stop. */
/** @type {{ abort: SharedArrayBuffer, throttle: SharedArrayBuffer, umask: number, tempTag: string }} */
// eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- workerData is untyped
const data = workerData;
const abortFlag = new Int32Array(data.abort);
const umask = data.umask;
const tempTag = data.tempTag;
/** @type {Int32Array} a word to sleep on for bandwidth limiting. */
const sleeper = new Int32Array(new SharedArrayBuffer(4));

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

/** The bandwidth limit of the current request, in bytes per second (0: none). */
let limit = 0;
/** Shared by the pool's workers: [0] bytes sent under the limit, [1] when it began (ms). */
const sent = new BigInt64Array(data.throttle);

/**
 * Sleeps until the pool as a whole is back under the limit: every worker
 * counts its bytes in one shared total.
 * @param {number} bytes
 */
function throttle(bytes) {
  if (limit <= 0) return;
  Atomics.compareExchange(sent, 1, 0n, BigInt(Date.now()));
  const start = Number(Atomics.load(sent, 1));
  const total = Number(Atomics.add(sent, 0, BigInt(bytes))) + bytes;
  const wait = start + (total / limit) * 1000 - Date.now();
  if (wait > 0) Atomics.wait(sleeper, 0, 0, wait);
}

/** @type {Buffer | undefined} a second block, for comparing and prefix copies */
let aux;

/**
 * One file of a CopyBatch, unpacked; `expectedHash` is '' when there is none.
 * @typedef {{ size: number, mtimeMs: number, mode: number, algorithm: 'sha256' | 'blake3',
 *   expectedHash: string, durable: boolean, compare: boolean }} CopyJob
 * @typedef {{ src: string, dst: string, tmp: string }} CopyPaths
 * @typedef {{ ok: true, hash: string, unchanged: boolean }
 *   | { ok: false, error: import('./fs-worker-protocol.js').WorkerError }} CopyResult
 */

/**
 * Copies the files of a batch, one after the other.
 * @param {import('./fs-worker-protocol.js').CopyBatch} batch
 * @param {(bytes: number) => void} onBytes
 * @returns {import('./fs-worker-protocol.js').CopyResults}
 */
function copyBatch(batch, onBytes) {
  const { keys, nums } = batch;
  const expected = new Map(batch.expected);
  const compare = new Set(batch.compare);
  /** @type {import('./fs-worker-protocol.js').CopyResults} */
  const out = { hashes: [], unchanged: [], errors: [] };
  for (let i = 0; i < keys.length; i++) {
    const key = /** @type {string} */ (keys[i]);
    const size = /** @type {number} */ (nums[4 * i]);
    const expectedHash = expected.get(i) ?? '';
    /** @type {CopyJob} */
    const job = {
      size,
      mtimeMs: /** @type {number} */ (nums[4 * i + 1]),
      mode: /** @type {number} */ (nums[4 * i + 2]),
      algorithm: expectedHash === '' ? batch.algorithm : algorithmOf(expectedHash),
      expectedHash,
      durable: size >= batch.durableFrom,
      compare: compare.has(i),
    };
    const temp = /** @type {number} */ (nums[4 * i + 3]);
    const paths = {
      src: `${batch.srcRoot}/${key}`,
      ...copyTarget(batch.dstRoot, key, tempTag, temp),
    };
    const result = copyOne(job, paths, onBytes);
    if (result.ok) {
      out.hashes.push(result.hash);
      if (result.unchanged) out.unchanged.push(i);
    } else {
      removeQuietly(paths.tmp);
      out.hashes.push('');
      out.errors.push([i, result.error]);
    }
  }
  return out;
}

/**
 * The algorithm of a ContentHash (`<algorithm>:<hex>`), as in core/hash.ts.
 * @param {string} hash
 */
function algorithmOf(hash) {
  return /** @type {'sha256' | 'blake3'} */ (hash.slice(0, hash.indexOf(':')));
}

/**
 * Copies one file to a temp path, hashing the bytes as they are written.
 * The source is checked before and after: a file that changed while it was
 * read is never reported as copied. In compare mode the destination holds a
 * file of the same size: it is read alongside and nothing is written until
 * the first difference, so a file whose content did not change is never
 * rewritten (`unchanged` in the result).
 * @param {CopyJob} job
 * @param {CopyPaths} paths
 * @param {(bytes: number) => void} onBytes
 * @returns {CopyResult}
 */
function copyOne(job, paths, onBytes) {
  let src = -1;
  let dst = -1;
  let old = -1;
  let phase = 'open';
  try {
    src = fs.openSync(paths.src, 'r');
    phase = 'read';
    const before = fs.fstatSync(src);
    if (before.size !== job.size || before.mtimeMs !== job.mtimeMs) {
      return { ok: false, error: changed(paths.src) };
    }
    if (job.compare) old = openSameSize(paths.dst, job.size);
    const comparing = old >= 0;
    const hash = hasherOf(job.algorithm);
    let total = 0;
    // Reading stops at the listed size: a file that grew is caught by the
    // fstat after, and small files cost one read instead of two.
    while (total < job.size) {
      if (abortFlag[0] !== 0) return { ok: false, error: { code: 'ABORTED', path: paths.src } };
      phase = 'read';
      const n = fs.readSync(src, buffer, 0, Math.min(BLOCK, job.size - total), total);
      if (n === 0) break;
      const block = buffer.subarray(0, n);
      hash.update(block);
      if (old >= 0) {
        aux ??= Buffer.allocUnsafe(BLOCK);
        const m = fs.readSync(old, aux, 0, n, total);
        if (m === n && aux.subarray(0, n).equals(block)) {
          total += n;
          continue;
        }
        fs.closeSync(old);
        old = -1;
      }
      if (dst < 0) {
        phase = 'create';
        dst = createTemp(paths.tmp, job.mode);
        phase = 'write';
        copyPrefix(src, dst, total);
      }
      phase = 'write';
      writeAll(dst, block, total);
      total += n;
      onBytes(n);
      throttle(n);
    }
    const after = fs.fstatSync(src);
    if (
      total !== job.size ||
      after.size !== before.size ||
      after.mtimeMs !== before.mtimeMs ||
      after.ctimeMs !== before.ctimeMs
    ) {
      return { ok: false, error: changed(paths.src) };
    }
    const digest = hash.digest();
    if (job.expectedHash !== '' && job.expectedHash !== digest) {
      return { ok: false, error: { code: 'HASH_MISMATCH', path: paths.src } };
    }
    if (comparing && dst < 0) return { ok: true, hash: digest, unchanged: true };
    phase = 'create';
    if (dst < 0) dst = createTemp(paths.tmp, job.mode);
    phase = 'write';
    // The mode was given at creation; only bits the umask took need a chmod.
    if ((job.mode & ~umask) !== job.mode) fs.fchmodSync(dst, job.mode);
    fs.futimesSync(dst, fsTime(before.atimeMs), fsTime(job.mtimeMs));
    if (job.durable) fs.fdatasyncSync(dst);
    fs.closeSync(dst);
    dst = -1;
    if (job.durable) fs.renameSync(paths.tmp, paths.dst);
    return { ok: true, hash: digest, unchanged: false };
  } catch (err) {
    const path = phase === 'read' || phase === 'open' ? paths.src : paths.dst;
    const action = { open: 'open', read: 'read', create: 'create', write: 'write' }[phase];
    return { ok: false, error: systemError(err, path, action ?? 'copy') };
  } finally {
    if (src >= 0) fs.closeSync(src);
    if (dst >= 0) fs.closeSync(dst);
    if (old >= 0) fs.closeSync(old);
  }
}

/**
 * Creates the temp file of a copy with the final permission bits (before
 * the umask), writable through this descriptor whatever they are.
 * @param {string} tmp
 * @param {number} mode
 */
function createTemp(tmp, mode) {
  return fs.openSync(tmp, 'wx', mode & 0o777);
}

/**
 * Opens the current destination file for comparing, or returns -1 when it
 * is not a regular file of that size.
 * @param {string} path
 * @param {number} size
 */
function openSameSize(path, size) {
  let fd = -1;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    const st = fs.fstatSync(fd);
    if (st.isFile() && st.size === size) return fd;
  } catch {
    // absent or unreadable: copy without comparing
  }
  if (fd >= 0) fs.closeSync(fd);
  return -1;
}

/**
 * Writes the first `length` bytes of src to dst (found equal so far).
 * @param {number} src
 * @param {number} dst
 * @param {number} length
 */
function copyPrefix(src, dst, length) {
  aux ??= Buffer.allocUnsafe(BLOCK);
  for (let pos = 0; pos < length;) {
    const n = fs.readSync(src, aux, 0, Math.min(BLOCK, length - pos), pos);
    if (n === 0) break;
    writeAll(dst, aux.subarray(0, n), pos);
    pos += n;
  }
}

/**
 * @param {number} fd
 * @param {Buffer} block
 * @param {number} position
 */
function writeAll(fd, block, position) {
  let off = 0;
  while (off < block.length)
    off += fs.writeSync(fd, block, off, block.length - off, position + off);
}

/**
 * Removes a temp file of a failed copy; a failure to remove it (the
 * directory may be unreadable) leaves it for the next run's cleanup.
 * @param {string} path
 */
function removeQuietly(path) {
  try {
    fs.rmSync(path, { force: true });
  } catch {
    // left for cleanup
  }
}

/**
 * A time for utimes; see fsTime in fs-entry.ts (negative numbers mean "now" to Node).
 * @param {number} ms
 */
function fsTime(ms) {
  return ms >= 0 ? ms / 1000 : new Date(ms);
}

/** @param {string} path */
function changed(path) {
  return /** @type {const} */ ({ code: 'FILE_CHANGED', path });
}

/**
 * Hashes one file; reports a file changing while it is read.
 * @param {string} path
 * @param {'sha256' | 'blake3'} algorithm
 * @returns {import('./fs-worker-protocol.js').HashResult}
 */
function hashOne(path, algorithm) {
  let fd = -1;
  try {
    fd = fs.openSync(path, 'r');
    const before = fs.fstatSync(fd);
    const hash = hasherOf(algorithm);
    let total = 0;
    for (;;) {
      if (abortFlag[0] !== 0) return { ok: false, error: { code: 'ABORTED', path } };
      const n = fs.readSync(fd, buffer, 0, BLOCK, total);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
      total += n;
    }
    const after = fs.fstatSync(fd);
    if (after.mtimeMs !== before.mtimeMs || after.size !== total) {
      return { ok: false, error: changed(path) };
    }
    return { ok: true, hash: hash.digest(), size: total };
  } catch (err) {
    return { ok: false, error: systemError(err, path, 'read') };
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

/**
 * @param {string} tmp
 * @param {string} dst
 * @returns {import('./fs-worker-protocol.js').RenameResult}
 */
function renameOne(tmp, dst) {
  try {
    fs.renameSync(tmp, dst);
    return { ok: true };
  } catch (err) {
    removeQuietly(tmp);
    return { ok: false, error: systemError(err, dst, 'rename into place') };
  }
}

port.on('message', (/** @type {import('./fs-worker-protocol.js').WorkerRequest} */ msg) => {
  if (msg.type === 'copy') {
    limit = msg.bwlimit;
    let pending = 0;
    const results = copyBatch(msg, (n) => {
      pending += n;
      if (pending >= BLOCK * 4) {
        port.postMessage({ type: 'bytes', id: msg.id, bytes: pending });
        pending = 0;
      }
    });
    port.postMessage({ type: 'done', id: msg.id, results: [results], bytes: pending });
  } else if (msg.type === 'walk') {
    const out = new Batcher(port, msg.id, 0);
    walkTree(msg.root, out, () => abortFlag[0] !== 0);
    out.post();
    port.postMessage({ type: 'done', id: msg.id, results: [], bytes: 0 });
  } else if (msg.type === 'diff') {
    const src = new Batcher(port, msg.id, 0);
    const dst = new Batcher(port, msg.id, 1);
    const unchanged = walkDirs(msg, msg.dirs, src, dst, () => abortFlag[0] !== 0);
    src.post();
    dst.post();
    port.postMessage({ type: 'done', id: msg.id, results: [{ unchanged }], bytes: 0 });
  } else if (msg.type === 'rename') {
    const results = msg.keys.map((key, i) => {
      const temp = /** @type {number} */ (msg.temps[i]);
      const { tmp, dst } = copyTarget(msg.dstRoot, key, tempTag, temp);
      return renameOne(tmp, dst);
    });
    port.postMessage({ type: 'done', id: msg.id, results, bytes: 0 });
  } else {
    const results = msg.paths.map((p) => hashOne(p, msg.algorithm));
    port.postMessage({ type: 'done', id: msg.id, results, bytes: 0 });
  }
});
