// Case cluster: the two acceptance figures of the replicated store (issue: replicated store),
// each as medians over interleaved runs and as a ratio, never as one absolute time.
//
//   throughput  the same dataset (8 incompressible files, 1 GiB; --quick 128 MiB) uploaded with
//               `tongbu sync` into (a) one plain node and (b) a 3-node cluster, R=3,
//               --replication quorum, the client given all three addresses. Fresh data dirs
//               (and a fresh catalog) per run. After each cluster run (untimed): the answer must
//               say >= 2 of 3 replicas, and every node must hold the same objects and bytes
//               once its replication lag is 0 (waited for up to 30 s).
//   commits     only when etcd answers on 127.0.0.1:2379: raw etcd puts (etcd3 client) vs
//               commits of one new small file each (chunk upload + commit over node:http with a
//               keep-alive agent) to node 1 of a 3-node cluster on the etcd catalog. Sequential
//               for ~3 s, and 100 concurrent workers (committers in their own namespaces, and
//               in one shared namespace).
//
// The catalog of the clusters is etcd when etcd answers, else a shared SQLite file
// (--catalog etcd|sqlite forces one). Nodes are stopped by PID (SIGTERM, SIGKILL after 10 s),
// their data dirs and etcd key prefixes deleted, also when a run fails.
import { spawn } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  futimesSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { flush, removeTree, runMeasured, warm } from './measure.mjs';
import { errorGist, failureText, median, table } from './report.mjs';
import { splitWords } from './tools.mjs';
import { MTIME } from './workloads.mjs';

export const CLUSTER_CASE = 'cluster';
export const CATALOGS = ['auto', 'etcd', 'sqlite'];
const DEFAULT_TONGBU_BIN = 'node bin/tongbu.js';
const ETCD_HOST = '127.0.0.1:2379';
const NS = 'bench';
const NODES = 3;
const DATA_VERSION = 1;
const MiB = 1024 * 1024;
/** Every node of a cluster: fast failure detection, no background repair or scrub in the timing. */
const NODE_ARGS = [
  '--heartbeat',
  '1s',
  '--down-grace',
  '1h',
  '--repair-every',
  '0',
  '--scrub-every',
  '0',
];
const START_SEC = 60;
const CONVERGE_SEC = 30;
const STOP_GRACE_MS = 10_000;
const CLK_TCK = 100; // getconf CLK_TCK on Linux/x86-64 and arm64
/** Commit-rate phases, in run order (rotated per run). */
export const RATE_PHASES = {
  etcdSeq: 'etcd-put-seq',
  etcdConc: 'etcd-put-conc',
  tbSeq: 'tongbu-commit-seq',
  tbConc: 'tongbu-commit-conc',
  tbSame: 'tongbu-commit-conc-same-ns',
};
/** Targets of the issue. */
export const TARGETS = {
  throughput: { ge: 0.6, what: 'quorum write throughput, 3 nodes / single node' },
  commitSeq: {
    ge: 0.5,
    what: 'sequential commit rate / raw etcd put rate',
    a: 'tbSeq',
    b: 'etcdSeq',
  },
  commitConc: {
    ge: 0.5,
    what: '100 concurrent committers (own namespaces) / 100 concurrent etcd puts',
    a: 'tbConc',
    b: 'etcdConc',
  },
};

export function clusterParams(quick) {
  return {
    files: 8,
    fileSize: quick ? 16 * MiB : 128 * MiB,
    rateSec: 3,
    concurrency: 100,
    commitFileBytes: 300,
    etcdValueBytes: 100,
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tail = (s, n = 2000) => (s.length > n ? s.slice(-n) : s);
const tryJson = (s) => {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
};
const sha256 = (...parts) => createHash('sha256').update(parts.join('\0')).digest();

// ---- the dataset --------------------------------------------------------------------------

/** DIR/src/cluster: `files` incompressible files (AES-128-CTR), generated once, reused. */
function ensureDataset(srcRoot, p, seed, log) {
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

// ---- nodes --------------------------------------------------------------------------------

const live = new Set();
let exitHook = false;
/** Kills every node still running, by PID (on exit, and on SIGINT/SIGTERM during the case). */
function killLive() {
  for (const n of live) {
    try {
      process.kill(n.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Spawns `tongbu serve` with stdout+stderr to logFile; tracked so that it is always stopped. */
function spawnNode(argv, { cwd, logFile, port, data }) {
  if (!exitHook) {
    exitHook = true;
    process.on('exit', killLive);
  }
  const fd = openSync(logFile, 'w');
  const child = spawn(argv[0], argv.slice(1), { cwd, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const node = { argv, child, pid: child.pid, port, data, logFile, exit: null };
  node.exited = new Promise((resolve) => {
    child.once('error', (e) => {
      node.exit = { code: null, signal: null, error: String(e) };
      resolve();
    });
    child.once('exit', (code, signal) => {
      node.exit = { code, signal };
      resolve();
    });
  });
  if (child.pid) {
    live.add(node);
    child.once('exit', () => live.delete(node));
  }
  return node;
}

/** utime + stime of a process in clock ticks, or null (no /proc, or gone). */
function cpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return null;
  }
}

function nodeLog(node) {
  try {
    return tail(readFileSync(node.logFile, 'utf8'), 1500);
  } catch {
    return '';
  }
}

/** SIGTERM by PID, SIGKILL after 10 s; how it ended. */
async function stopNode(node) {
  if (!node?.pid || node.exit) return node?.exit ?? null;
  const t0 = Date.now();
  try {
    process.kill(node.pid, 'SIGTERM');
  } catch {
    /* exited meanwhile */
  }
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    try {
      process.kill(node.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, STOP_GRACE_MS);
  await node.exited;
  clearTimeout(timer);
  return { ...node.exit, killed, stopSec: (Date.now() - t0) / 1000 };
}

/** GET/POST JSON on a node; never throws ({status: null} when unreachable). */
function call(port, method, path, { token, body, agent, headers = {}, timeoutMs = 30_000 } = {}) {
  return new Promise((resolve) => {
    const payload =
      body == null ? null : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: agent ?? false,
        headers: {
          ...headers,
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(payload
            ? {
                'content-length': payload.length,
                'content-type': Buffer.isBuffer(body)
                  ? 'application/octet-stream'
                  : 'application/json',
              }
            : {}),
        },
      },
      (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          resolve({ status: res.statusCode, text, json: tryJson(text) });
        });
        res.on('error', (e) => resolve({ status: null, text: String(e), json: null }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ status: null, text: String(e), json: null }));
    req.end(payload ?? undefined);
  });
}

async function until(what, sec, check) {
  const end = Date.now() + sec * 1000;
  for (;;) {
    const r = await check();
    if (r) return null;
    if (Date.now() > end) return `${what}: not after ${sec} s`;
    await sleep(200);
  }
}

/**
 * Starts one plain node (catalog null) or a cluster of NODES nodes on `catalog`; resolves to
 * { nodes, token, url, error }. On error the nodes started so far are in `nodes` (to stop).
 */
async function startStore(ctx, root, catalog, logPrefix) {
  const bin = splitWords(ctx.tongbuBin ?? DEFAULT_TONGBU_BIN);
  const count = catalog ? NODES : 1;
  const nodes = [];
  for (let i = 0; i < count; i++) {
    const port = await freePort();
    const data = join(root, `n${i + 1}`);
    const argv = [...bin, 'serve', '--data', data, '--listen', `127.0.0.1:${port}`];
    if (catalog) {
      argv.push('--catalog', catalog, '--node-id', `n${i + 1}`, '--replicas', '3');
      argv.push('--replication', 'quorum', ...NODE_ARGS);
    }
    nodes.push(
      spawnNode(argv, { cwd: ctx.repo, logFile: `${logPrefix}-n${i + 1}.log`, port, data }),
    );
  }
  const fail = (why) => {
    const logs = nodes.map((n, j) => {
      const how = n.exit ? ` exited ${n.exit.code ?? n.exit.signal}` : '';
      return `[n${j + 1}${how}] ${nodeLog(n)}`;
    });
    return { nodes, error: [why, ...logs].join('\n') };
  };
  for (const n of nodes) {
    const err = await until(`node on port ${n.port} healthy`, START_SEC, async () => {
      if (n.exit) return true;
      return (await call(n.port, 'GET', '/v1/health')).status === 200;
    });
    if (n.exit) return fail(`node exited (code ${n.exit.code}, signal ${n.exit.signal})`);
    if (err) return fail(err);
  }
  const tokenFile = join(nodes[0].data, 'admin.token');
  let token = null;
  await until('admin token', 10, () => {
    if (existsSync(tokenFile)) token = readFileSync(tokenFile, 'utf8').trim() || null;
    return token != null;
  });
  if (!token) return fail(`no admin token in ${tokenFile}`);
  if (catalog) {
    // Every node sees all NODES members up before anything is timed.
    let last = null;
    const err = await until(`${NODES} members up`, START_SEC, async () => {
      const ok = [];
      for (const n of nodes) {
        last = await call(n.port, 'GET', '/v1/cluster', { token });
        const ms = last.json?.nodes ?? [];
        ok.push(last.status === 200 && ms.length === NODES && ms.every((m) => m.health === 'up'));
      }
      return ok.every(Boolean);
    });
    if (err)
      return fail(`${err}; last GET /v1/cluster: ${last?.status} ${tail(last?.text ?? '', 500)}`);
  }
  const hosts = nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  return { nodes, token, url: `tongbu://${hosts}/${NS}`, error: null };
}

// ---- catalogs -----------------------------------------------------------------------------

async function etcdAnswers() {
  try {
    const res = await fetch(`http://${ETCD_HOST}/version`, { signal: AbortSignal.timeout(2000) });
    const v = await res.json();
    return v?.etcdserver ?? null;
  } catch {
    return null;
  }
}

async function etcdClient() {
  const { Etcd3 } = await import('etcd3');
  return new Etcd3({ hosts: ETCD_HOST });
}

/** A fresh catalog URL per cluster: a new SQLite file, or a new etcd key prefix. */
function catalogFor(kind, root, tag) {
  if (kind === 'sqlite') return { url: `sqlite:${join(root, 'catalog.db')}`, etcdPrefix: null };
  const name = `tongbu-bench-${process.pid}-${tag}-${randomBytes(3).toString('hex')}`;
  return { url: `etcd://${ETCD_HOST}/${name}`, etcdPrefix: `/${name}/` };
}

async function deleteEtcdPrefix(prefix) {
  if (!prefix) return null;
  const c = await etcdClient();
  try {
    const r = await c.delete().prefix(prefix);
    return Number(r.deleted);
  } finally {
    c.close();
  }
}

/** Stops the nodes by PID, deletes the data dirs and the catalog (also after a failure). */
async function teardown(store, root, catalog, log) {
  const stops = [];
  for (const n of store?.nodes ?? []) stops.push(await stopNode(n));
  removeTree(root);
  try {
    await deleteEtcdPrefix(catalog?.etcdPrefix);
  } catch (e) {
    log(`[cluster] WARNING: deleting etcd prefix ${catalog.etcdPrefix} failed: ${e.message}`);
  }
  return stops;
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

async function throughputRun(ctx, opts, variant, i, src, dataset, catalogKind) {
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

// ---- part 2: commit rate vs etcd put rate --------------------------------------------------

/** p50, p99 and max of a list of latencies (ms); null when empty. */
function percentiles(list) {
  if (!list.length) return null;
  const v = [...list].sort((a, b) => a - b);
  const at = (q) => v[Math.min(v.length - 1, Math.floor(q * v.length))];
  return { p50: at(0.5), p99: at(0.99), max: v[v.length - 1] };
}

/**
 * Runs `workers` loops of `op(worker, seq)` until `sec` have passed (in-flight ops finish);
 * after one untimed op per worker (connections, namespaces). Counts ok ops and errors.
 */
async function rateLoop(workers, sec, op) {
  const lat = [];
  let ops = 0;
  let errors = 0;
  let firstError = null;
  const warmErrors = [];
  await Promise.all(
    Array.from({ length: workers }, (_, w) => op(w, 0).catch((e) => warmErrors.push(e.message))),
  );
  if (warmErrors.length)
    return {
      ok: false,
      ops: 0,
      errors: warmErrors.length,
      firstError: `warm-up: ${warmErrors[0]}`,
    };
  const t0 = process.hrtime.bigint();
  const end = Date.now() + sec * 1000;
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let seq = 1; Date.now() < end; seq++) {
        const s = process.hrtime.bigint();
        try {
          await op(w, seq);
          ops++;
          lat.push(Number(process.hrtime.bigint() - s) / 1e6);
        } catch (e) {
          errors++;
          firstError ??= e.message;
          if (errors > 50 && ops === 0) return;
        }
      }
    }),
  );
  const elapsedSec = Number(process.hrtime.bigint() - t0) / 1e9;
  return {
    ok: ops > 0,
    ops,
    errors,
    firstError,
    elapsedSec,
    rate: ops / elapsedSec,
    latencyMs: percentiles(lat),
  };
}

async function etcdPhase(client, workers, p, tag) {
  const prefix = `/tongbu-bench-${process.pid}-${tag}-${randomBytes(3).toString('hex')}/`;
  const value = 'v'.repeat(p.etcdValueBytes);
  try {
    return {
      prefix,
      ...(await rateLoop(workers, p.rateSec, (w) => client.put(`${prefix}w${w}`).value(value))),
    };
  } finally {
    await client.delete().prefix(prefix);
  }
}

/** One commit of one new small file: upload its chunk, then commit it onto the worker's base. */
function committer(store, agent, p) {
  const node = store.nodes[0];
  const headers = { 'x-tongbu-replication': 'quorum' };
  return async ({ ns, key, state, timed }) => {
    const bytes = randomBytes(p.commitFileBytes);
    const digest = createHash('sha256').update(bytes).digest();
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    const t0 = performance.now();
    const up = await call(node.port, 'POST', '/v1/chunks', {
      token: store.token,
      agent,
      headers: { ...headers, 'x-tongbu-namespace': ns },
      body: Buffer.concat([digest, len, bytes]),
    });
    if (up.status !== 200) throw new Error(`POST /v1/chunks: ${up.status} ${tail(up.text, 300)}`);
    const t1 = performance.now();
    const hash = `sha256:${digest.toString('hex')}`;
    const entry = {
      kind: 'file',
      size: bytes.length,
      mtimeMs: Date.now(),
      mode: 0o644,
      hash,
      parts: 1,
      data: hash,
    };
    const r = await call(node.port, 'POST', `/v1/ns/${encodeURIComponent(ns)}/commits`, {
      token: store.token,
      agent,
      headers: { ...headers, 'x-tongbu-namespace': ns },
      body: { base: state.base, changes: [{ key, entry }], message: 'bench' },
    });
    if (r.status !== 200) throw new Error(`POST commits: ${r.status} ${tail(r.text, 300)}`);
    state.base = r.json.commit;
    if (!timed) return;
    state.uploadMs.push(t1 - t0);
    state.commitMs.push(performance.now() - t1);
    if (r.json.merged) state.merged++;
    const rep = r.json.replication;
    if (rep && (state.fewest == null || rep.replicas < state.fewest.replicas)) state.fewest = rep;
  };
}

async function tongbuPhase(store, workers, p, nsOf) {
  const agent = new Agent({ keepAlive: true, maxSockets: workers });
  try {
    const commit = committer(store, agent, p);
    const states = Array.from({ length: workers }, () => ({
      base: null,
      merged: 0,
      fewest: null,
      uploadMs: [],
      commitMs: [],
    }));
    const r = await rateLoop(workers, p.rateSec, (w, seq) =>
      commit({ ns: nsOf(w), key: `w${w}/f${seq}.bin`, state: states[w], timed: seq > 0 }),
    );
    const fewest = states.map((s) => s.fewest).filter(Boolean);
    return {
      ...r,
      merged: states.reduce((n, s) => n + s.merged, 0),
      // The two requests of an op: the chunk upload, then the commit.
      uploadMs: percentiles(states.flatMap((s) => s.uploadMs)),
      commitMs: percentiles(states.flatMap((s) => s.commitMs)),
      replication: fewest.length
        ? fewest.reduce((a, b) => (b.replicas < a.replicas ? b : a))
        : null,
    };
  } finally {
    agent.destroy();
  }
}

async function commitRun(ctx, opts, i, catalogKind) {
  const p = ctx.params;
  const root = join(ctx.caseRoot, 'commits');
  removeTree(root);
  mkdirSync(root, { recursive: true });
  const catalog = catalogFor(catalogKind, root, `cr${i}`);
  const rec = { run: i, catalog: catalog.url, phases: {}, error: null };
  const tag = (ph) => `[cluster] commits run ${i}/${opts.runs} ${ph}`;
  let store = null;
  let etcd = null;
  try {
    etcd = await etcdClient();
    store = await startStore(ctx, root, catalog.url, join(ctx.logDir, `commits-${i}`));
    rec.serverArgv = store.nodes.map((n) => n.argv);
    if (store.error) {
      // The raw etcd phases still run: they need no node.
      rec.error = `nodes did not start: ${store.error}`;
      ctx.log(`${tag('')}nodes did not start: ${errorGist({ stderrTail: store.error })}`);
    }
    const names = Object.keys(RATE_PHASES);
    const order = names
      .slice((i - 1) % names.length)
      .concat(names.slice(0, (i - 1) % names.length));
    const c = p.concurrency;
    const run = {
      etcdSeq: () => etcdPhase(etcd, 1, p, `r${i}s`),
      etcdConc: () => etcdPhase(etcd, c, p, `r${i}c`),
      tbSeq: () => tongbuPhase(store, 1, p, () => `seq-r${i}`),
      tbConc: () => tongbuPhase(store, c, p, (w) => `own-r${i}-w${w}`),
      tbSame: () => tongbuPhase(store, c, p, () => `same-r${i}`),
    };
    for (const k of order) {
      const isTongbu = k.startsWith('tb');
      if (isTongbu && rec.error) {
        rec.phases[k] = { ok: false, ops: 0, errors: 0, firstError: rec.error };
        continue;
      }
      flush();
      const r = { ...(await run[k]()), load1: loadavg()[0] };
      const dead = isTongbu && store.nodes.find((n) => n.exit);
      if (dead) {
        r.ok = false;
        r.firstError = `node n${store.nodes.indexOf(dead) + 1} exited: ${nodeLog(dead)}`;
        rec.error = r.firstError;
      }
      rec.phases[k] = r;
      ctx.log(`${tag(RATE_PHASES[k])}: ${describeRate(r)}`);
      if (r.firstError) {
        ctx.log(`${tag(RATE_PHASES[k])}   first error: ${r.firstError.split('\n')[0]}`);
      }
    }
  } catch (e) {
    rec.error = e.message;
    ctx.log(`${tag('')}FAILED: ${e.message.split('\n')[0]}`);
  } finally {
    etcd?.close();
    rec.stops = await teardown(store, root, catalog, ctx.log);
  }
  return rec;
}

function describeRate(r) {
  if (!r.ok) return `FAILED (${r.ops ?? 0} ok, ${r.errors ?? 0} errors)`;
  const parts = [`${r.rate.toFixed(0)}/s`, `${r.ops} ops in ${r.elapsedSec.toFixed(2)} s`];
  if (r.latencyMs?.p50 != null)
    parts.push(`p50 ${r.latencyMs.p50.toFixed(1)} ms, p99 ${r.latencyMs.p99.toFixed(1)} ms`);
  if (r.commitMs) {
    parts.push(`p50 upload ${r.uploadMs.p50.toFixed(1)} + commit ${r.commitMs.p50.toFixed(1)} ms`);
  }
  if (r.errors) parts.push(`${r.errors} errors`);
  if (r.merged) parts.push(`${r.merged} merged`);
  if (r.replication)
    parts.push(`${r.replication.mode} >= ${r.replication.replicas} of ${r.replication.wanted}`);
  return parts.join(', ');
}

// ---- the case -----------------------------------------------------------------------------

function stats(xs) {
  const v = xs.filter((x) => x != null && Number.isFinite(x));
  if (!v.length) return null;
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

const ratio = (a, b) => (a != null && b != null && b > 0 ? a / b : null);

/** Runs the cluster case. ctx: { work, srcRoot, tmp, repo, log, tongbuBin }. */
export async function runClusterCase(caseName, opts, ctx0) {
  const params = clusterParams(opts.quick);
  const caseRoot = join(ctx0.work, 'cluster');
  const logDir = join(caseRoot, 'logs');
  const ctx = {
    ...ctx0,
    params,
    caseRoot,
    logDir,
    bin: splitWords(ctx0.tongbuBin ?? DEFAULT_TONGBU_BIN),
    measure: (argv) =>
      runMeasured(argv, { cwd: ctx0.repo, tmpDir: ctx0.tmp, timeoutSec: opts.timeoutSec }),
  };
  const log = ctx.log;
  const etcdVersion = await etcdAnswers();
  const asked = opts.catalog ?? 'auto';
  const c = {
    kind: 'cluster',
    params,
    quick: opts.quick,
    catalog: {
      asked,
      used: null,
      etcd: etcdVersion ? { host: ETCD_HOST, version: etcdVersion } : null,
    },
    nodeArgs: NODE_ARGS,
    commands: {},
    throughput: { single: [], cluster: [] },
    commits: [],
    error: null,
  };
  const onSignal = (sig) => {
    killLive();
    log(`[cluster] ${sig}: nodes killed; data under ${caseRoot}`);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (!opts.tools.includes('tongbu')) throw new Error('tongbu not in --tools: nothing to run');
    if (asked === 'etcd' && !etcdVersion)
      throw new Error(`--catalog etcd: etcd does not answer on ${ETCD_HOST}`);
    c.catalog.used = asked === 'auto' ? (etcdVersion ? 'etcd' : 'sqlite') : asked;
    removeTree(caseRoot);
    mkdirSync(logDir, { recursive: true });
    const src = ensureDataset(ctx.srcRoot, params, opts.seed, log);
    const dataset = { files: params.files, bytes: params.files * params.fileSize };
    c.dataset = { dir: src, ...dataset };
    const cat =
      c.catalog.used === 'etcd'
        ? `etcd://${ETCD_HOST}/PREFIX`
        : 'sqlite:DIR/cluster/cluster/catalog.db';
    c.commands = {
      single: {
        serve: [...ctx.bin, 'serve', '--data', 'DATA', '--listen', '127.0.0.1:PORT'],
        upload: [
          ...ctx.bin,
          'sync',
          src,
          `tongbu://127.0.0.1:PORT/${NS}`,
          '--json',
          '--state',
          'STATE',
        ],
      },
      cluster: {
        serve: [
          ...ctx.bin,
          'serve',
          '--data',
          'DATA_i',
          '--listen',
          '127.0.0.1:PORT_i',
          '--catalog',
          cat,
          '--node-id',
          'n_i',
          '--replicas',
          '3',
          '--replication',
          'quorum',
          ...NODE_ARGS,
        ],
        upload: [
          ...ctx.bin,
          'sync',
          src,
          `tongbu://127.0.0.1:PORT_1,127.0.0.1:PORT_2,127.0.0.1:PORT_3/${NS}`,
          '--json',
          '--state',
          'STATE',
          '--replication',
          'quorum',
        ],
        env: 'TONGBU_TOKEN=$(cat DATA_1/admin.token)',
        check:
          'GET /v1/internal/status on each node (admin token) until lag 0 and objects/bytes equal',
      },
      commit: [
        'POST /v1/chunks  [32-byte sha256][u32 BE length][bytes]  (x-tongbu-replication: quorum)',
        'POST /v1/ns/NS/commits  {base, changes: [{key, entry: {kind: "file", size, mtimeMs, mode, hash, parts: 1, data: hash}}]}',
      ],
    };
    log(
      `== ${caseName}: ${params.files} x ${params.fileSize / MiB} MiB, single node vs ${NODES} nodes ` +
        `R=3 quorum; catalog ${c.catalog.used}${etcdVersion ? ` (etcd ${etcdVersion})` : ' (etcd not answering: no commit-rate part)'}`,
    );
    const variants = ['single', 'cluster'];
    for (let i = 1; i <= opts.runs; i++) {
      const k = (i - 1) % variants.length;
      for (const v of variants.slice(k).concat(variants.slice(0, k))) {
        c.throughput[v].push(await throughputRun(ctx, opts, v, i, src, dataset, c.catalog.used));
      }
    }
    if (etcdVersion) {
      if (c.catalog.used !== 'etcd') {
        log(
          '[cluster] commit rate on the SQLite catalog (forced): the ratios are not the issue figure',
        );
      }
      for (let i = 1; i <= opts.runs; i++)
        c.commits.push(await commitRun(ctx, opts, i, c.catalog.used));
    }
  } catch (e) {
    c.error = e.message;
    log(`[cluster] FAILED: ${e.message}`);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    killLive();
    // Data dirs are gone already (per run); keep the node logs only when something failed.
    if (existsSync(caseRoot)) {
      for (const f of readdirSync(caseRoot)) if (f !== 'logs') removeTree(join(caseRoot, f));
    }
  }
  c.summary = summarizeCluster(c);
  c.ratios = clusterRatios(c);
  const failed =
    c.error ||
    Object.values(c.summary.throughput).some((s) => s.failedRuns) ||
    Object.values(c.summary.commits).some((s) => s.failedRuns);
  if (!failed) removeTree(caseRoot);
  else log(`[cluster] node logs kept in ${logDir}`);
  return c;
}

function uploadFailure(r) {
  if (r.phase === 'serve') return `nodes did not start: ${errorGist(r)}`;
  return failureText(r);
}

function summarizeCluster(c) {
  const throughput = {};
  for (const [v, runs] of Object.entries(c.throughput)) {
    if (!runs.length) continue;
    const ok = runs.filter((r) => r.ok);
    const failed = runs.filter((r) => !r.ok);
    throughput[v] = {
      okRuns: ok.length,
      failedRuns: failed.length,
      wallSec: stats(ok.map((r) => r.wallSec)),
      mbps: stats(ok.map((r) => r.mbps)),
      maxRssKiB: stats(ok.map((r) => r.maxRssKiB)),
      convergeSec: stats(ok.map((r) => r.convergeSec)),
      nodesCpuSec: stats(ok.map((r) => r.nodesCpuSec)),
      replicas: stats(ok.map((r) => r.replication?.replicas)),
      wanted: ok.find((r) => r.replication)?.replication.wanted ?? null,
      failure: failed.length ? uploadFailure(failed[failed.length - 1]) : null,
    };
  }
  const commits = {};
  for (const k of Object.keys(RATE_PHASES)) {
    const rs = c.commits.map(
      (r) => r.phases[k] ?? (r.error ? { ok: false, firstError: r.error } : null),
    );
    const present = rs.filter(Boolean);
    if (!present.length) continue;
    const ok = present.filter((r) => r.ok);
    const failed = present.filter((r) => !r.ok);
    const lastErr = [...present].reverse().find((r) => r.firstError)?.firstError ?? null;
    commits[k] = {
      okRuns: ok.length,
      failedRuns: failed.length,
      rate: stats(ok.map((r) => r.rate)),
      p50Ms: stats(ok.map((r) => r.latencyMs?.p50)),
      p99Ms: stats(ok.map((r) => r.latencyMs?.p99)),
      uploadP50Ms: stats(ok.map((r) => r.uploadMs?.p50)),
      commitP50Ms: stats(ok.map((r) => r.commitMs?.p50)),
      errors: present.reduce((n, r) => n + (r.errors ?? 0), 0),
      merged: ok.reduce((n, r) => n + (r.merged ?? 0), 0),
      replicas: stats(ok.map((r) => r.replication?.replicas)),
      failure: lastErr ? lastErr.split('\n')[0] : null,
    };
  }
  return { throughput, commits };
}

function clusterRatios(c) {
  const t = c.summary.throughput;
  const m = c.summary.commits;
  const rate = (k) => m[k]?.rate?.median ?? null;
  const issueFigure = c.catalog.used === 'etcd';
  const values = {
    throughput: ratio(t.cluster?.mbps?.median, t.single?.mbps?.median),
    commitSeq: ratio(rate('tbSeq'), rate('etcdSeq')),
    commitConc: ratio(rate('tbConc'), rate('etcdConc')),
    commitConcSameNs: ratio(rate('tbSame'), rate('etcdConc')),
  };
  // Per run, the same ratios (paired: the phases of one run ran back to back).
  const perRun = c.commits.map((r) => {
    const x = (k) => (r.phases[k]?.ok ? r.phases[k].rate : null);
    return {
      run: r.run,
      commitSeq: ratio(x('tbSeq'), x('etcdSeq')),
      commitConc: ratio(x('tbConc'), x('etcdConc')),
      commitConcSameNs: ratio(x('tbSame'), x('etcdConc')),
    };
  });
  const targets = {};
  for (const [k, tg] of Object.entries(TARGETS)) {
    const v = values[k];
    const commitPart = k !== 'throughput';
    const ran = commitPart ? m[tg.a] != null : t.cluster != null;
    const allFailed = commitPart ? m[tg.a]?.okRuns === 0 : t.cluster?.okRuns === 0;
    let met = v != null ? v >= tg.ge : ran && allFailed ? false : null;
    if (commitPart && !issueFigure) met = null;
    targets[k] = {
      ...tg,
      value: v,
      met,
      note: commitPart && !issueFigure ? 'catalog sqlite' : null,
    };
  }
  return { ...values, perRun, targets };
}

// ---- report --------------------------------------------------------------------------------

const f2 = (x) => (x == null ? '-' : x.toFixed(x >= 100 ? 1 : x >= 10 ? 2 : 3));
const f0 = (x) => (x == null ? '-' : x.toFixed(0));
const range = (s, f) => (s ? `${f(s.min)}-${f(s.max)}` : '-');

/** The cluster case's tables and targets; '' when the case did not run. */
export function formatClusterReport(results) {
  const out = [];
  for (const [caseName, c] of Object.entries(results.cases)) {
    if (c.kind !== 'cluster') continue;
    const notes = [];
    const s = c.summary;
    const p = c.params;
    const rows = [
      [
        'upload',
        'ok',
        'median s',
        'min-max s',
        'MB/s',
        'min-max MB/s',
        'RSS MB',
        'node CPU s',
        'replicas',
        'equal after s',
      ],
    ];
    for (const [v, t] of Object.entries(s.throughput)) {
      rows.push([
        v === 'single' ? 'single node' : `${NODES} nodes R=3 quorum`,
        `${t.okRuns}/${t.okRuns + t.failedRuns}`,
        f2(t.wallSec?.median),
        range(t.wallSec, f2),
        f0(t.mbps?.median),
        range(t.mbps, f0),
        t.maxRssKiB ? ((t.maxRssKiB.median * 1024) / 1e6).toFixed(0) : '-',
        f2(t.nodesCpuSec?.median),
        t.replicas
          ? `${t.replicas.min === t.replicas.max ? t.replicas.min : `${t.replicas.min}-${t.replicas.max}`} of ${t.wanted}`
          : '-',
        t.convergeSec ? `${f2(t.convergeSec.median)} (max ${f2(t.convergeSec.max)})` : '-',
      ]);
      if (t.failure) notes.push(`upload ${v}: ${t.failure}`);
    }
    let text = rows.length > 1 ? table(rows) : '(no upload runs)';
    const mb = (p.files * p.fileSize) / 1e6;
    text +=
      `\n\n${caseName}: ${p.files} files x ${p.fileSize / MiB} MiB (${mb.toFixed(0)} MB) per upload; ` +
      `catalog ${c.catalog.used ?? '-'}. MB/s = dataset bytes / wall time of \`tongbu sync\`. ` +
      'RSS = the client. node CPU = user + system seconds of all nodes while the client ran. ' +
      'replicas = the fewest any write of the upload reached (the answer); equal after = time after ' +
      'the client exited until every node had lag 0 and the same objects and bytes.';
    const loads = [
      ...Object.values(c.throughput).flat(),
      ...c.commits.flatMap((r) => Object.values(r.phases)),
    ]
      .map((r) => r.load1)
      .filter((x) => x != null);
    if (loads.length) {
      text += ` Load average (1 min) after the runs: ${f2(Math.min(...loads))}-${f2(Math.max(...loads))}.`;
    }
    if (Object.keys(s.commits).length) {
      const crow = [
        [
          'commit rate',
          'ok',
          'ops/s',
          'min-max ops/s',
          'p50 ms',
          'p99 ms',
          'upload p50',
          'commit p50',
          'errors',
          'merged',
        ],
      ];
      for (const [k, t] of Object.entries(s.commits)) {
        crow.push([
          RATE_PHASES[k],
          `${t.okRuns}/${t.okRuns + t.failedRuns}`,
          f0(t.rate?.median),
          range(t.rate, f0),
          f2(t.p50Ms?.median),
          f2(t.p99Ms?.median),
          f2(t.uploadP50Ms?.median),
          f2(t.commitP50Ms?.median),
          String(t.errors),
          k.startsWith('tb') ? String(t.merged) : '-',
        ]);
        if (t.failure) notes.push(`${RATE_PHASES[k]}: ${t.failure}`);
      }
      text += `\n\n${table(crow)}`;
      text +=
        `\n\n~${p.rateSec} s per phase; seq = 1 worker, conc = ${p.concurrency} concurrent workers. ` +
        `etcd: puts of ${p.etcdValueBytes}-byte values through one etcd3 client (one gRPC channel). ` +
        `tongbu: each op = upload one new ${p.commitFileBytes}-byte file's chunk + a commit of it, ` +
        `to node 1 of ${NODES} (R=3 quorum, catalog ${c.catalog.used}); conc = each worker its own ` +
        'namespace; conc-same-ns = all in one namespace (merged = commits merged onto a newer ' +
        'head). p50/p99: per op; upload/commit p50: its two requests.';
    } else if (!c.catalog.etcd) {
      text += `\n\nCommit rate: skipped (etcd does not answer on ${ETCD_HOST}).`;
    }
    const lines = [];
    for (const t of Object.values(c.ratios?.targets ?? {})) {
      const met = t.met == null ? `n/a${t.note ? `: ${t.note}` : ''}` : t.met ? 'met' : 'NOT met';
      lines.push(
        `${t.what}: ${t.value == null ? '-' : `${t.value.toFixed(3)}x`} (target >= ${t.ge}: ${met})`,
      );
    }
    if (c.ratios?.commitConcSameNs != null) {
      lines.push(
        `also: 100 concurrent committers in one namespace / 100 concurrent etcd puts: ${c.ratios.commitConcSameNs.toFixed(3)}x`,
      );
    }
    text += `\n\nTargets (ratios of medians):\n  ${lines.join('\n  ')}`;
    if (c.error) notes.push(`case stopped: ${c.error.split('\n')[0]}`);
    if (notes.length) text += `\n\nFailures (last failing run):\n  ${notes.join('\n  ')}`;
    out.push(text);
  }
  return out.join('\n\n');
}
