// Nodes of the cluster case: starting one plain node or a 3-node cluster (`tongbu serve`),
// waiting for health and membership, JSON calls to a node, stopping by PID, and the catalogs
// (a fresh SQLite file or etcd key prefix per cluster) with their teardown.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { removeTree } from './measure.mjs';
import { splitWords } from './tools.mjs';

export const DEFAULT_TONGBU_BIN = 'node bin/tongbu.js';
export const ETCD_HOST = '127.0.0.1:2379';
export const NS = 'bench';
export const NODES = 3;
/** Every node of a cluster: fast failure detection, no background repair or scrub in the timing. */
export const NODE_ARGS = [
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
const STOP_GRACE_MS = 10_000;
export const CLK_TCK = 100; // getconf CLK_TCK on Linux/x86-64 and arm64

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const tail = (s, n = 2000) => (s.length > n ? s.slice(-n) : s);
export const tryJson = (s) => {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
};

// ---- nodes --------------------------------------------------------------------------------

const live = new Set();
let exitHook = false;
/** Kills every node still running, by PID (on exit, and on SIGINT/SIGTERM during the case). */
export function killLive() {
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
export function cpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return null;
  }
}

export function nodeLog(node) {
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
export function call(
  port,
  method,
  path,
  { token, body, agent, headers = {}, timeoutMs = 30_000 } = {},
) {
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

export async function until(what, sec, check) {
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
export async function startStore(ctx, root, catalog, logPrefix) {
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

export async function etcdAnswers() {
  try {
    const res = await fetch(`http://${ETCD_HOST}/version`, { signal: AbortSignal.timeout(2000) });
    const v = await res.json();
    return v?.etcdserver ?? null;
  } catch {
    return null;
  }
}

export async function etcdClient() {
  const { Etcd3 } = await import('etcd3');
  return new Etcd3({ hosts: ETCD_HOST });
}

/** A fresh catalog URL per cluster: a new SQLite file, or a new etcd key prefix. */
export function catalogFor(kind, root, tag) {
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
export async function teardown(store, root, catalog, log) {
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
