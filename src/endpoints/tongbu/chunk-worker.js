// @ts-check
/**
 * A worker thread that chunks and hashes uploads (see chunk-pool.ts): per
 * open session, FastCDC over the pieces in order, sha256 of every chunk
 * and the whole-content hash. A piece arrives transferred and goes back
 * transferred with the chunks it completed, so the main thread, which
 * sends the chunk bytes, never copies it twice.
 */
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { FastCdcCore } from '../../core/fastcdc-core.js';
import { hasherOf } from '../../core/hasher.js';

if (!parentPort) throw new Error('chunk-worker must run as a worker thread');
const port = parentPort;

/**
 * @typedef {object} Session
 * @property {FastCdcCore} cdc
 * @property {import('node:crypto').Hash} chunk sha256 of the chunk in progress
 * @property {number} hashed absolute offset up to which `chunk` has its bytes
 * @property {{ update(bytes: Uint8Array): void, digest(): import('../../core/hash.js').ContentHash }} whole
 */

/** @type {Map<number, Session>} */
const sessions = new Map();

/**
 * The sha256 of each chunk that ends in `piece` (which starts at absolute
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
    hashes.push(`sha256:${s.chunk.digest('hex')}`);
    s.chunk = createHash('sha256');
    s.hashed = end;
  }
  s.chunk.update(piece.subarray(s.hashed - base));
  s.hashed = base + piece.length;
  return hashes;
}

/** @param {import('./chunk-pool.js').ChunkRequest} msg */
function handle(msg) {
  if (msg.type === 'open') {
    sessions.set(msg.id, {
      cdc: new FastCdcCore(msg.chunker),
      chunk: createHash('sha256'),
      hashed: 0,
      whole: hasherOf(msg.algorithm),
    });
    return;
  }
  const s = sessions.get(msg.id);
  if (msg.type === 'close' || s === undefined) {
    sessions.delete(msg.id);
    return;
  }
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
  const cuts = s.cdc.finish();
  const hashes = digests(s, new Uint8Array(0), s.cdc.bytes, cuts);
  sessions.delete(msg.id);
  /** @type {import('./chunk-pool.js').ChunkReply} */
  const reply = { type: 'end', id: msg.id, cuts, hashes, hash: s.whole.digest() };
  port.postMessage(reply);
}

port.on('message', (/** @type {import('./chunk-pool.js').ChunkRequest} */ msg) => {
  try {
    handle(msg);
  } catch (err) {
    sessions.delete(msg.id);
    /** @type {import('./chunk-pool.js').ChunkReply} */
    const reply = { type: 'error', id: msg.id, message: String(err) };
    port.postMessage(reply);
  }
});
