// Part 1 of the cluster case, throughput: the generated dataset, and one upload with
// `tongbu sync` into a single node or a 3-node cluster, with its replica and listing checks.
import { createCipheriv, createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  futimesSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import {
  CLK_TCK,
  NODES,
  NS,
  call,
  catalogFor,
  cpuTicks,
  nodeLog,
  startStore,
  tail,
  teardown,
  tryJson,
  until,
} from './cluster-nodes.mjs';
import { flush, removeTree, warm } from './measure.mjs';
import { errorGist } from './report.mjs';
import { MTIME } from './workloads.mjs';

const DATA_VERSION = 1;
const MiB = 1024 * 1024;
const CONVERGE_SEC = 30;
const sha256 = (...parts) => createHash('sha256').update(parts.join('\0')).digest();

// ---- the dataset --------------------------------------------------------------------------

/** DIR/src/cluster: `files` incompressible files (AES-128-CTR), generated once, reused. */
export function ensureDataset(srcRoot, p, seed, log) {
  const dir = join(srcRoot, 'cluster');
  const marker = join(srcRoot, 'cluster.params.json');
  const want = JSON.stringify({
    version: DATA_VERSION,
    files: p.files,
    fileSize: p.fileSize,
    seed,
  });
  if (existsSync(dir) && existsSync(marker) && readFileSync(marker, 'utf8') === want) return dir;
  rmSync(marker, { force: true });
  removeTree(dir);
  mkdirSync(dir, { recursive: true });
  log(`[cluster] generating ${p.files} x ${p.fileSize / MiB} MiB into ${dir}`);
  const key = sha256('tongbu-bench-cluster-key', seed).subarray(0, 16);
  const zero = Buffer.alloc(4 * MiB);
  for (let i = 0; i < p.files; i++) {
    const iv = sha256('tongbu-bench-cluster-iv', seed, i).subarray(0, 16);
    const cipher = createCipheriv('aes-128-ctr', key, iv);
    const name = `shard-${String(i + 1).padStart(5, '0')}-of-${String(p.files).padStart(5, '0')}.bin`;
    const fd = openSync(join(dir, name), 'w');
    try {
      for (let left = p.fileSize; left > 0; left -= zero.length) {
        writeSync(fd, cipher.update(zero.subarray(0, Math.min(left, zero.length))));
      }
      futimesSync(fd, MTIME, MTIME);
    } finally {
      closeSync(fd);
    }
  }
  writeFileSync(marker, want);
  return dir;
}

// ---- part 1: throughput -------------------------------------------------------------------

async function withEnv(vars, fn) {
  const old = {};
  for (const [k, v] of Object.entries(vars)) {
    old[k] = process.env[k];
    process.env[k] = v;
  }
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(old)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Every file of the namespace's head: { files, bytes } (paged). */
async function listed(port, token) {
  let files = 0;
  let bytes = 0;
  let after = null;
  let ref = 'heads/main';
  for (;;) {
    const q = `ref=${encodeURIComponent(ref)}${after ? `&after=${encodeURIComponent(after)}` : ''}`;
    const r = await call(port, 'GET', `/v1/ns/${NS}/entries?${q}`, { token });
    if (r.status !== 200) throw new Error(`GET entries: ${r.status} ${tail(r.text, 300)}`);
    for (const e of r.json.entries) {
      if (e.kind === 'file') {
        files++;
        bytes += e.size;
      }
    }
    if (!r.json.next) return { files, bytes };
    after = r.json.next;
    ref = r.json.commit;
  }
}

/**
 * Waits until every node's lag is 0 and all hold the same objects and bytes, at least `min`
 * bytes each; null when so, else why not.
 */
async function converged(store, rec, min) {
  let last = null;
  const t0 = Date.now();
  const err = await until('nodes equal with lag 0', CONVERGE_SEC, async () => {
    last = [];
    for (const n of store.nodes) {
      const r = await call(n.port, 'GET', '/v1/internal/status', { token: store.token });
      last.push(r.status === 200 ? r.json : { error: `${r.status} ${tail(r.text, 200)}` });
    }
    const ok = last.every((s) => s && s.lag === 0 && s.objects != null);
    return ok && last.every((s) => s.objects === last[0].objects && s.bytes === last[0].bytes);
  });
  rec.convergeSec = err ? null : (Date.now() - t0) / 1000;
  rec.nodeStatus = last?.map((s) => ({
    id: s.id,
    objects: s.objects,
    bytes: s.bytes,
    lag: s.lag,
    hints: s.hints,
    error: s.error,
  }));
  if (err) return `${err}: ${JSON.stringify(rec.nodeStatus)}`;
  const short = last.find((s) => s.bytes < min);
  if (short) return `node ${short.id} holds ${short.bytes} bytes, less than the dataset's ${min}`;
  return null;
}

export async function throughputRun(ctx, opts, variant, i, src, dataset, catalogKind) {
  const root = join(ctx.caseRoot, variant);
  const logPrefix = join(ctx.logDir, `throughput-${i}-${variant}`);
  removeTree(root);
  mkdirSync(root, { recursive: true });
  const catalog = variant === 'cluster' ? catalogFor(catalogKind, root, `tp${i}`) : null;
  const tag = `[cluster] throughput run ${i}/${opts.runs} ${variant}`;
  let store = null;
  let rec = {
    variant,
    run: i,
    ok: false,
    phase: 'serve',
    wallSec: 0,
    catalog: catalog?.url ?? null,
  };
  try {
    store = await startStore(ctx, root, catalog?.url, logPrefix);
    rec.serverArgv = store.nodes.map((n) => n.argv);
    if (store.error) {
      rec.stderrTail = store.error;
      ctx.log(`${tag}: FAILED (nodes did not start): ${errorGist(rec)}`);
      return rec;
    }
    const argv = [
      ...ctx.bin,
      'sync',
      src,
      store.url,
      '--json',
      '--state',
      join(root, 'upload.state'),
    ];
    if (variant === 'cluster') argv.push('--replication', 'quorum');
    warm(src);
    flush();
    const cpu0 = store.nodes.map((n) => cpuTicks(n.pid));
    const r = await withEnv({ TONGBU_TOKEN: store.token }, () => ctx.measure(argv));
    const cpu1 = store.nodes.map((n) => cpuTicks(n.pid));
    rec = { ...rec, ...r, argv, phase: 'run', load1: loadavg()[0] };
    // CPU seconds each node spent while the client ran (user + system, from /proc).
    rec.nodeCpuSec = cpu0.map((a, j) =>
      a != null && cpu1[j] != null ? (cpu1[j] - a) / CLK_TCK : null,
    );
    rec.nodesCpuSec = rec.nodeCpuSec.every((x) => x != null)
      ? rec.nodeCpuSec.reduce((a, b) => a + b, 0)
      : null;
    rec.json = tryJson(r.stdoutTail);
    rec.replication = rec.json?.commit?.replication ?? null;
    const dead = store.nodes.find((n) => n.exit);
    if (dead) {
      rec.ok = false;
      rec.verifyError = `node n${store.nodes.indexOf(dead) + 1} exited: ${nodeLog(dead)}`;
    }
    if (rec.ok && variant === 'cluster') {
      const rep = rec.replication;
      if (!rep || rep.mode !== 'quorum' || rep.wanted !== NODES || !(rep.replicas >= 2)) {
        rec.verifyError = `replication answer ${JSON.stringify(rep)}: expected quorum, >= 2 of ${NODES}`;
      } else rec.verifyError = await converged(store, rec, dataset.bytes);
    }
    if (rec.ok && !rec.verifyError && opts.verify !== 'none') {
      try {
        for (const n of variant === 'cluster' ? store.nodes : [store.nodes[0]]) {
          const got = await listed(n.port, store.token);
          if (got.files !== dataset.files || got.bytes !== dataset.bytes) {
            rec.verifyError = `node on port ${n.port} lists ${got.files} files, ${got.bytes} bytes; expected ${dataset.files}, ${dataset.bytes}`;
            break;
          }
        }
      } catch (e) {
        rec.verifyError = e.message;
      }
    }
    if (rec.verifyError) rec.ok = false;
    if (rec.ok) rec.mbps = dataset.bytes / rec.wallSec / 1e6;
    ctx.log(`${tag}: ${describeUpload(rec)}`);
    if (!rec.ok) ctx.log(`${tag}   failed: ${rec.verifyError ?? (errorGist(rec) || 'no output')}`);
    return rec;
  } finally {
    rec.stops = await teardown(store, root, catalog, ctx.log);
    flush();
  }
}

function describeUpload(r) {
  const st = r.ok
    ? 'ok'
    : `FAILED (${r.verifyError ? 'check' : r.timedOut ? 'timeout' : `exit ${r.exitCode}`})`;
  const parts = [`${r.wallSec.toFixed(3)} s`, st];
  if (r.mbps) parts.push(`${r.mbps.toFixed(0)} MB/s`);
  if (r.replication)
    parts.push(`${r.replication.mode} ${r.replication.replicas} of ${r.replication.wanted}`);
  if (r.convergeSec != null) parts.push(`all nodes equal ${r.convergeSec.toFixed(1)} s later`);
  if (r.nodesCpuSec != null) parts.push(`node cpu ${r.nodesCpuSec.toFixed(1)} s`);
  if (r.maxRssKiB != null) parts.push(`client rss ${((r.maxRssKiB * 1024) / 1e6).toFixed(0)} MB`);
  return parts.join(', ');
}
