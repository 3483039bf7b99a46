// @ts-check
/**
 * A worker thread that chunks and hashes uploads (see chunk-pool.ts): per
 * session, FastCDC over the content in order, the store address (blake3) of every chunk and
 * the whole-content hash. A stream session's pieces arrive transferred and
 * go back transferred with the chunks they completed, so the main thread,
 * which sends the chunk bytes, never copies them twice. A file session
 * reads a local file here, block by block, and answers with cuts and
 * hashes only: the main thread reads the bytes of the chunks the node
 * lacks, and no others.
 */
import { Buffer } from 'node:buffer';
import * as fs from 'node:fs';
import { setImmediate } from 'node:timers';
import { parentPort } from 'node:worker_threads';
import { FastCdcCore } from '../../core/fastcdc-core.js';
import { hasherOf, STORE_ALGORITHM } from '../../core/hasher.js';

if (!parentPort) throw new Error('chunk-worker must run as a worker thread');
const port = parentPort;

/**
 * @typedef {object} Session
 * @property {FastCdcCore} cdc
 * @property {{ update(bytes: Uint8Array): void, digest(): import('../../core/hash.js').ContentHash }} chunk address hasher of the chunk in progress
 * @property {number} hashed absolute offset up to which `chunk` has its bytes
 * @property {{ update(bytes: Uint8Array): void, digest(): import('../../core/hash.js').ContentHash }} whole
 * @property {FileRead} [file] a file session's file, read here
 * @property {Predict} [predict] a file session's old version, to check chunks against
 */

/**
 * @typedef {object} Predict
 * @property {number} pos where the next chunk starts (a cut)
 * @property {number} next the old chunk expected at pos, or -1
 * @property {number} shift new offset minus old offset since the last resync
 * @property {Uint32Array} sizes
 * @property {string[]} addresses of the old chunks
 * @property {Map<string, number>} index first position of each old chunk address
 * @property {Map<number, number>} starts old chunk index by its old offset
 * @property {number[]} offsets old offset of each old chunk
 * @property {number} bufStart file offset of buffer[0]
 * @property {number} bufLength bytes of the file in buffer
 * @property {number} maxSize the chunker's largest chunk
 */

/**
 * @typedef {object} FileRead
 * @property {number} fd
 * @property {string} path
 * @property {number} size
 * @property {number} mtimeMs
 * @property {number} credit blocks it may still read before the main thread takes more
 * @property {boolean} waiting out of credit: the next 'more' resumes the reading
 */

/** @type {Map<number, Session>} */
const sessions = new Map();

/**
 * The address of each chunk that ends in `piece` (which starts at absolute
 * offset `base`); the bytes after the last cut start the next chunk.
 * @param {Session} s
 * @param {Uint8Array} piece
 * @param {number} base
 * @param {import('../../core/fastcdc-core.js').Cut[]} cuts
 */
function digests(s, piece, base, cuts) {
  /** @type {import('../../core/hash.js').ContentHash[]} */
  const hashes = [];
  for (const cut of cuts) {
    const end = cut.offset + cut.length;
    s.chunk.update(piece.subarray(s.hashed - base, end - base));
    hashes.push(s.chunk.digest());
    s.chunk = hasherOf(STORE_ALGORITHM);
    s.hashed = end;
  }
  s.chunk.update(piece.subarray(s.hashed - base));
  s.hashed = base + piece.length;
  return hashes;
}

/** Blocks read from a file of a file session, one per turn of the event loop. */
const BLOCK = 4 << 20;
/**
 * Blocks a file session reads ahead of what the main thread has taken: the
 * main thread reads the bytes of missing chunks back, and a file larger
 * than the page cache must still be there when it does.
 */
const AHEAD = 8;
const buffer = Buffer.allocUnsafe(BLOCK);

/**
 * @param {import('./chunk-pool.js').ChunkOpen} msg
 * @returns {Session}
 */
function sessionOf(msg) {
  return {
    cdc: new FastCdcCore(msg.chunker),
    chunk: hasherOf(STORE_ALGORITHM),
    hashed: 0,
    whole: hasherOf(msg.algorithm),
  };
}

/**
 * @param {import('./chunk-pool.js').OldChunks} old
 * @param {number} maxSize
 * @returns {Predict}
 */
function predictOf(old, maxSize) {
  const count = old.sizes.length;
  const digests = Buffer.from(old.digests.buffer, old.digests.byteOffset, old.digests.byteLength);
  /** @type {string[]} */
  const addresses = new Array(count);
  /** @type {Map<string, number>} */
  const index = new Map();
  /** @type {Map<number, number>} */
  const starts = new Map();
  /** @type {number[]} */
  const offsets = new Array(count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const address = `${STORE_ALGORITHM}:${digests.toString('hex', i * 32, i * 32 + 32)}`;
    addresses[i] = address;
    if (!index.has(address)) index.set(address, i);
    starts.set(at, i);
    offsets[i] = at;
    at += /** @type {number} */ (old.sizes[i]);
  }
  const sizes = old.sizes;
  return {
    pos: 0,
    next: 0,
    shift: 0,
    sizes,
    addresses,
    index,
    starts,
    offsets,
    bufStart: 0,
    bufLength: 0,
    maxSize,
  };
}

/** Chunkers with larger chunks than this cut every chunk, old version or not. */
const MAX_PREDICTED_CHUNK = 4 << 20;
/** The buffer of predicting sessions (one turn at a time): a block and a chunk past it. */
const PREDICT_BUFFER = Buffer.allocUnsafe(BLOCK + MAX_PREDICTED_CHUNK);

/**
 * The bytes [pos, pos + length) of the file, from the buffer, which is
 * refilled from pos when they are not all in it.
 * @param {Predict} p
 * @param {FileRead} file
 * @param {number} pos
 * @param {number} length
 */
function bytesAt(p, file, pos, length) {
  if (pos < p.bufStart || pos + length > p.bufStart + p.bufLength) {
    // What one turn reads: a block and the chunk that crosses its end.
    const want = Math.min(BLOCK + p.maxSize, file.size - pos);
    const n = fs.readSync(file.fd, PREDICT_BUFFER, 0, want, pos);
    if (n < Math.min(want, length)) throw changed(file.path);
    p.bufStart = pos;
    p.bufLength = n;
  }
  return PREDICT_BUFFER.subarray(pos - p.bufStart, pos - p.bufStart + length);
}

/** @param {Uint8Array} bytes */
function addressOf(bytes) {
  const h = hasherOf(STORE_ALGORITHM);
  h.update(bytes);
  return h.digest();
}

/**
 * One block's worth of chunks of a session with an old version: where an
 * old chunk is expected, its hash is checked instead of scanning for the
 * cut; otherwise FastCDC finds the next cut, and a chunk that turns out to
 * be an old one (or to end where one starts) puts the expectation back.
 * @param {number} id
 * @param {Session} s
 * @param {FileRead} file
 * @param {Predict} p
 */
function predictBlock(id, s, file, p) {
  /** @type {import('../../core/fastcdc-core.js').Cut[]} */
  const cuts = [];
  /** @type {import('../../core/hash.js').ContentHash[]} */
  const hashes = [];
  /** @type {boolean[]} */
  const known = [];
  const from = p.pos;
  const maxSize = s.cdc.options.maxSize;
  // The buffer is shared by the worker's sessions, which take turns: another may have refilled it.
  p.bufLength = 0;
  while (p.pos < file.size && p.pos - from < BLOCK) {
    let length = -1;
    let isKnown = false;
    let hash;
    const k = p.next;
    // The length of the expected chunk when its bytes were not it (their hash stays in
    // `hash`): FastCDC may cut at the same length, and then needs no second hash.
    let tried = -1;
    if (k >= 0 && k < p.sizes.length) {
      const size = /** @type {number} */ (p.sizes[k]);
      // The old last chunk ended at the old file's end, not at a cut.
      const fits =
        size <= maxSize &&
        (k < p.sizes.length - 1 ? p.pos + size <= file.size : p.pos + size === file.size);
      if (fits) {
        const bytes = bytesAt(p, file, p.pos, size);
        hash = addressOf(bytes);
        if (hash === p.addresses[k]) {
          s.whole.update(bytes);
          length = size;
          isKnown = true;
          p.next = k + 1;
        } else tried = size;
      }
    }
    if (length < 0) {
      const window = bytesAt(p, file, p.pos, Math.min(maxSize, file.size - p.pos));
      const cut = s.cdc.nextCut(window);
      length = cut > 0 ? cut : window.length;
      const bytes = window.subarray(0, length);
      hash = length === tried && hash !== undefined ? hash : addressOf(bytes);
      s.whole.update(bytes);
      const j = p.index.get(hash);
      if (j !== undefined) {
        isKnown = true;
        p.shift = p.pos - /** @type {number} */ (p.offsets[j]);
        p.next = j + 1;
      } else {
        p.next = p.starts.get(p.pos + length - p.shift) ?? -1;
      }
    }
    cuts.push({ offset: p.pos, length });
    hashes.push(/** @type {import('../../core/hash.js').ContentHash} */ (hash));
    known.push(isKnown);
    p.pos += length;
  }
  return { cuts, hashes, known, bytes: p.pos - from };
}

/**
 * Posts one block's chunks of a file session and reads the next block, if
 * the main thread has taken enough of the earlier ones.
 * @param {number} id
 * @param {FileRead} file
 * @param {import('./chunk-pool.js').ChunkReply} reply
 */
function post(id, file, reply) {
  port.postMessage(reply);
  file.credit--;
  if (file.credit > 0) setImmediate(readBlock, id);
  else file.waiting = true;
}

/**
 * Reads one block of a file session and posts the chunks it completes;
 * after the last, checks that the file is still as listed and posts the end.
 * @param {number} id
 */
function readBlock(id) {
  const s = sessions.get(id);
  const file = s?.file;
  if (s === undefined || file === undefined) return; // closed meanwhile
  try {
    const p = s.predict;
    if (p && p.pos < file.size) {
      /** @type {import('./chunk-pool.js').ChunkReply} */
      const reply = { type: 'cuts', id, ...predictBlock(id, s, file, p) };
      post(id, file, reply);
      return;
    }
    const base = p ? file.size : s.cdc.bytes;
    if (base < file.size) {
      const n = fs.readSync(file.fd, buffer, 0, Math.min(BLOCK, file.size - base), base);
      if (n === 0) throw changed(file.path);
      const piece = buffer.subarray(0, n);
      s.whole.update(piece);
      const cuts = s.cdc.push(piece);
      /** @type {import('./chunk-pool.js').ChunkReply} */
      const reply = { type: 'cuts', id, cuts, hashes: digests(s, piece, base, cuts), bytes: n };
      post(id, file, reply);
      return;
    }
    const after = fs.fstatSync(file.fd);
    if (after.size !== file.size || after.mtimeMs !== file.mtimeMs) throw changed(file.path);
    end(id, s);
  } catch (err) {
    fail(id, err);
  }
}

/**
 * @param {number} id
 * @param {Session} s
 */
function end(id, s) {
  const cuts = s.predict ? [] : s.cdc.finish();
  const hashes = digests(s, new Uint8Array(0), s.cdc.bytes, cuts);
  drop(id);
  /** @type {import('./chunk-pool.js').ChunkReply} */
  const reply = { type: 'end', id, cuts, hashes, hash: s.whole.digest() };
  port.postMessage(reply);
}

/** @param {number} id */
function drop(id) {
  const fd = sessions.get(id)?.file?.fd;
  sessions.delete(id);
  if (fd !== undefined) fs.closeSync(fd);
}

/** @param {string} path */
function changed(path) {
  return Object.assign(new Error(`${path} changed while it was read`), { code: 'FILE_CHANGED' });
}

/**
 * @param {number} id
 * @param {unknown} err
 */
function fail(id, err) {
  try {
    drop(id);
  } catch {
    // the error below is the one to report
  }
  const e = /** @type {NodeJS.ErrnoException} */ (err);
  /** @type {import('./chunk-pool.js').ChunkReply} */
  const reply = { type: 'error', id, code: e.code ?? '', message: e.message ?? String(err) };
  port.postMessage(reply);
}

/** @param {import('./chunk-pool.js').ChunkRequest} msg */
function handle(msg) {
  switch (msg.type) {
    case 'open':
      sessions.set(msg.id, sessionOf(msg));
      return;
    case 'file': {
      const fd = fs.openSync(msg.path, 'r');
      /** @type {FileRead} */
      const file = {
        fd,
        path: msg.path,
        size: msg.size,
        mtimeMs: msg.mtimeMs,
        credit: AHEAD,
        waiting: false,
      };
      sessions.set(msg.id, {
        ...sessionOf(msg),
        file,
        ...(msg.old && msg.chunker.maxSize <= MAX_PREDICTED_CHUNK
          ? { predict: predictOf(msg.old, msg.chunker.maxSize) }
          : {}),
      });
      const before = fs.fstatSync(fd);
      if (before.size !== msg.size || before.mtimeMs !== msg.mtimeMs) throw changed(msg.path);
      setImmediate(readBlock, msg.id);
      return;
    }
    case 'close':
      drop(msg.id);
      return;
    case 'more': {
      const file = sessions.get(msg.id)?.file;
      if (file === undefined) return;
      file.credit++;
      if (file.waiting) {
        file.waiting = false;
        setImmediate(readBlock, msg.id);
      }
      return;
    }
  }
  const s = sessions.get(msg.id);
  if (s === undefined) return;
  if (msg.type === 'piece') {
    const piece = new Uint8Array(msg.piece);
    const base = s.cdc.bytes;
    s.whole.update(piece);
    const cuts = s.cdc.push(piece);
    const hashes = digests(s, piece, base, cuts);
    /** @type {import('./chunk-pool.js').ChunkReply} */
    const reply = { type: 'chunks', id: msg.id, cuts, hashes, piece: msg.piece };
    port.postMessage(reply, [msg.piece]);
    return;
  }
  end(msg.id, s);
}

port.on('message', (/** @type {import('./chunk-pool.js').ChunkRequest} */ msg) => {
  try {
    handle(msg);
  } catch (err) {
    fail(msg.id, err);
  }
});
