// Deterministic, cached, AI-like workloads for the benchmark.
//
// Bytes come from AES-128-CTR over zeros with a key derived from the seed: a fast (~2 GB/s with
// AES-NI), deterministic, incompressible stream. Sizes and changed regions come from a small
// seeded PRNG (sfc32). Every file gets a fixed mtime so runs are repeatable.
import { createCipheriv, createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  futimesSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

const GEN_VERSION = 1;
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
/** Fixed mtime of W1, W2, W4 files: 2024-01-01T00:00:00Z. */
export const MTIME = 1704067200;
/** W3 files get a later mtime, so size+mtime quick checks (rsync, rclone) see them as changed. */
export const MTIME_W3 = MTIME + 86400;

export function workloadParams(quick) {
  const w2 = { files: 4, size: quick ? 64 * MiB : GiB };
  return {
    w1: {
      files: quick ? 2000 : 20000,
      dirs: quick ? 20 : 200,
      minSize: 64 * KiB,
      maxSize: 256 * KiB,
    },
    w2,
    w3: {
      base: w2,
      changedFraction: 0.02,
      region: 64 * KiB,
      insertFile: 1,
      insertAt: 4 * MiB,
      insertLen: MiB,
    },
    w4: { files: quick ? 20000 : 200000, dirs: quick ? 100 : 1000, minSize: KiB, maxSize: 4 * KiB },
  };
}

function digest(...parts) {
  return createHash('sha256').update(parts.join('\0')).digest();
}

/** Deterministic incompressible byte stream. */
class ByteStream {
  constructor(seed, domain) {
    const key = digest('tongbu-bench-key', seed).subarray(0, 16);
    const iv = digest('tongbu-bench-iv', seed, domain).subarray(0, 16);
    this.cipher = createCipheriv('aes-128-ctr', key, iv);
    this.zero = Buffer.alloc(0);
  }
  next(n) {
    if (this.zero.length < n) this.zero = Buffer.alloc(Math.max(n, 4 * MiB));
    return this.cipher.update(this.zero.subarray(0, n));
  }
}

/** sfc32 PRNG seeded from a string. */
export function prng(seed, domain) {
  const h = digest('tongbu-bench-prng', seed, domain);
  let a = h.readUInt32LE(0);
  let b = h.readUInt32LE(4);
  let c = h.readUInt32LE(8);
  let d = h.readUInt32LE(12);
  const next = () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  return { next, int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)) };
}

function writeFile(path, chunks, mtime) {
  const fd = openSync(path, 'w');
  try {
    for (const c of chunks) writeSync(fd, c);
    futimesSync(fd, mtime, mtime);
  } finally {
    closeSync(fd);
  }
}

/** Many small files in `dirs` directories; `content(i, size)` yields the bytes of file i. */
function genManySmall(dir, p, dirName, fileName, content) {
  const rnd = prng(p.seed, dirName);
  const perDir = Math.ceil(p.files / p.dirs);
  const dirs = [];
  for (let i = 0; i < p.files; i++) {
    const sub = join(dir, dirName(Math.floor(i / perDir)));
    if (i % perDir === 0) {
      mkdirSync(sub, { recursive: true });
      dirs.push(sub);
    }
    const size = rnd.int(p.minSize, p.maxSize);
    writeFile(join(sub, fileName(i)), [content(i, size)], MTIME);
  }
  return dirs;
}

function genW1(dir, p) {
  const s = new ByteStream(p.seed, 'w1');
  return genManySmall(
    dir,
    p,
    (d) => `shard-${String(d).padStart(3, '0')}`,
    (i) => `part-${String(i).padStart(5, '0')}.bin`,
    (_i, size) => s.next(size),
  );
}

function genW4(dir, p) {
  const s = new ByteStream(p.seed, 'w4');
  return genManySmall(
    dir,
    p,
    (d) => `meta-${String(d).padStart(4, '0')}`,
    (i) => `item-${String(i).padStart(6, '0')}.json`,
    (i, size) => {
      // JSON-ish text metadata record padded with base64 "caption" text to exactly `size` bytes.
      const head = `{"id":${i},"caption":"`;
      const tail = '"}\n';
      const bodyLen = size - head.length - tail.length;
      const body = s
        .next(Math.ceil((bodyLen * 3) / 4) + 3)
        .toString('base64')
        .slice(0, bodyLen);
      return Buffer.from(head + body + tail);
    },
  );
}

export function w2Name(i, n) {
  const pad = (x) => String(x).padStart(5, '0');
  return `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
}

/** Sorted distinct region indices changed in W3 file f (in W2 coordinates). */
export function w3Regions(p, f) {
  const blocks = Math.floor(p.base.size / p.region);
  const want = Math.ceil(blocks * p.changedFraction);
  const rnd = prng(p.seed, `w3-regions-${f}`);
  const set = new Set();
  while (set.size < want) set.add(rnd.int(0, blocks - 1));
  return [...set].sort((a, b) => a - b);
}

const CHUNK = 4 * MiB;

/** Streams W2 file f in chunks, patching W3 regions and the insertion when `w3` is given. */
function genCheckpointFile(path, seed, f, size, w3) {
  const base = new ByteStream(seed, `w2-${f}`);
  const patch = w3 ? new ByteStream(seed, `w3-patch-${f}`) : null;
  const regions = w3 ? w3Regions(w3, f) : [];
  let r = 0;
  const fd = openSync(path, 'w');
  try {
    for (let off = 0; off < size; off += CHUNK) {
      if (w3 && f === w3.insertFile && off === w3.insertAt) {
        writeSync(fd, new ByteStream(seed, `w3-insert-${f}`).next(w3.insertLen));
      }
      const len = Math.min(CHUNK, size - off);
      const buf = base.next(len);
      while (r < regions.length && regions[r] * w3.region < off + len) {
        const at = regions[r] * w3.region - off;
        patch.next(w3.region).copy(buf, at, 0, Math.min(w3.region, len - at));
        r++;
      }
      writeSync(fd, buf);
    }
    const t = w3 ? MTIME_W3 : MTIME;
    futimesSync(fd, t, t);
  } finally {
    closeSync(fd);
  }
}

function genW2(dir, p) {
  for (let f = 0; f < p.files; f++)
    genCheckpointFile(join(dir, w2Name(f, p.files)), p.seed, f, p.size, null);
  return [];
}

function genW3(dir, p) {
  if (p.insertAt % CHUNK !== 0) throw new Error('insertAt must be a multiple of 4 MiB');
  const b = p.base;
  for (let f = 0; f < b.files; f++)
    genCheckpointFile(join(dir, w2Name(f, b.files)), p.seed, f, b.size, p);
  return [];
}

const GENERATORS = { w1: genW1, w2: genW2, w3: genW3, w4: genW4 };

/**
 * Makes sure workload `name` exists under `srcRoot` with exactly these parameters; regenerates it
 * when its marker file (`<name>.params.json`, beside the directory, so tools never copy it) is
 * missing or different. Returns the workload directory.
 */
export function ensureWorkload(srcRoot, name, params, seed, log) {
  const dir = join(srcRoot, name);
  const marker = join(srcRoot, `${name}.params.json`);
  const want = JSON.stringify({ generator: GEN_VERSION, seed, ...params });
  if (existsSync(marker) && existsSync(dir) && readFileSync(marker, 'utf8') === want) return dir;
  log(`generating ${name} in ${dir} ...`);
  const t0 = process.hrtime.bigint();
  rmSync(marker, { force: true });
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const dirs = GENERATORS[name](dir, { ...params, seed });
  for (const d of [...dirs, dir]) utimesSync(d, MTIME, MTIME);
  writeFileSync(marker, want);
  log(`generated ${name} (${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s)`);
  return dir;
}
