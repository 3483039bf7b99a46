// Chunk store ingest: 8192 random 64 KiB chunks (512 MiB) through storeChecked, then one sync(),
// into a fresh directory, for FileChunkStore and PackChunkStore; the median of 3 runs.
// Hashes are computed before the clock starts (the server hashes while it receives), so the
// figure is the store's own cost; putSync (hash + store) is printed beside it.
//
//   npx tsc -p tsconfig.build.json && node bench/pack-store-bench.mjs [--dir PARENT] [--runs N]
//
// PARENT (default: the OS temp dir) should be on the filesystem the data directory lives on.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const DIST = new URL('../dist/store/', import.meta.url);
if (!existsSync(new URL('pack-chunk-store.js', DIST))) {
  console.error('dist/store/pack-chunk-store.js is missing: run `npx tsc -p tsconfig.build.json`');
  process.exit(1);
}
const { FileChunkStore } = await import(new URL('file-chunk-store.js', DIST).href);
const { PackChunkStore } = await import(new URL('pack-chunk-store.js', DIST).href);
const { storeAddress } = await import(new URL('../core/hash.js', DIST).href);

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: tmpdir() },
    runs: { type: 'string', default: '3' },
    chunks: { type: 'string', default: '8192' },
  },
});
const RUNS = Number(values.runs);
const CHUNKS = Number(values.chunks);
const CHUNK_BYTES = 64 * 1024;
const TOTAL = CHUNKS * CHUNK_BYTES;

const chunks = Array.from({ length: CHUNKS }, () => randomBytes(CHUNK_BYTES));
const hashes = chunks.map((c) => storeAddress(c));

async function run(Store, mode) {
  execFileSync('sync'); // untimed: the previous run's writeback and deletes settle first
  const dir = mkdtempSync(join(values.dir, 'tongbu-bench-'));
  const store = Store.open(dir);
  try {
    const started = process.hrtime.bigint();
    if (mode === 'storeChecked') {
      for (let i = 0; i < CHUNKS; i++) store.storeChecked(chunks[i], hashes[i]);
    } else {
      for (let i = 0; i < CHUNKS; i++) store.putSync(chunks[i]);
    }
    const written = process.hrtime.bigint();
    await store.sync();
    const synced = process.hrtime.bigint();
    return { total: Number(synced - started) / 1e9, sync: Number(synced - written) / 1e9 };
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mbps = (seconds) => TOTAL / 1e6 / seconds;

console.log(
  `${CHUNKS} x 64 KiB random chunks (${(TOTAL / 2 ** 20).toFixed(0)} MiB) + one sync(), ` +
    `median of ${RUNS}, in ${values.dir}`,
);
for (const [name, Store] of [
  ['FileChunkStore', FileChunkStore],
  ['PackChunkStore', PackChunkStore],
]) {
  for (const mode of ['storeChecked', 'putSync']) {
    const results = [];
    for (let r = 0; r < RUNS; r++) results.push(await run(Store, mode));
    const total = median(results.map((x) => x.total));
    const sync = median(results.map((x) => x.sync));
    console.log(
      `${name.padEnd(15)} ${`${mode} + sync`.padEnd(20)} ${mbps(total).toFixed(0).padStart(6)} MB/s` +
        `  (${((total * 1e6) / CHUNKS).toFixed(0)} µs/chunk; sync ${(sync * 1000).toFixed(0)} ms;` +
        ` runs ${results.map((x) => mbps(x.total).toFixed(0)).join(', ')} MB/s)`,
    );
  }
}
