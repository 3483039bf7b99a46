// Case store-w2-w3: uploads into a store over loopback. tongbu's store node (`tongbu serve` +
// `tongbu sync SRC tongbu://...`), an rsync daemon, and a local restic repository.
//
// One run of one tool, with a fresh store each time:
//   start the server (untimed) -> W2 into the empty store (timed) -> stored bytes, verify
//   (untimed) -> W3 into the store that holds W2 (timed) -> stored bytes, verify (untimed)
//   -> stop the server (SIGTERM by PID, SIGKILL after 10 s) -> delete the store.
// Both uploads read the same path, DIR/store/src. It holds hard links to the cached W2 files,
// then to the W3 files. restic therefore sees one source path and picks the W2 snapshot as
// parent, the way it would for a directory whose checkpoint files are replaced.
// Measured per timed upload: wall time, the tool's own wire bytes (tongbu: server /metrics
// counters; rsync: --stats; restic: none, local repo), the loopback interface's rx bytes
// (/proc/net/dev), bytes written by client + server, server CPU seconds, then `du -sb` of the
// store.
import { spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createServer, connect } from 'node:net';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import {
  compareContent,
  compareTree,
  flush,
  removeTree,
  runMeasured,
  sh,
  treeSummary,
  warm,
} from './measure.mjs';
import { errorGist, failureText, median, table } from './report.mjs';
import { splitWords, toolsForCase } from './tools.mjs';
import { MTIME } from './workloads.mjs';

export const DEFAULT_TONGBU_BIN = 'node bin/tongbu.js';
export const PHASES = { w2: 'store-w2-upload', w3: 'store-w3' };
const RESTIC_PASSWORD = 'tongbu-bench';
const STORE_NAME = 'bench';
const SERVER_START_SEC = 60;
const STOP_GRACE_MS = 10_000;
const CLK_TCK = 100; // getconf CLK_TCK on Linux/x86-64 and arm64
/** Targets from issue 3. `le`: ratio must be at most `value`; `ge`: at least. */
export const TARGETS = {
  w3WireTongbuRsync: { le: 1, what: 'W3 wire bytes tongbu/rsync-daemon' },
  w3TimeTongbuRsync: { le: 0.5, what: 'W3 time tongbu/rsync-daemon' },
  storedTongbuRestic: { le: 1, what: 'stored bytes after W2+W3 tongbu/restic' },
  w2ThroughputTongbuRsync: { ge: 1, what: 'W2 throughput tongbu/rsync-daemon' },
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tailText = (s, n = 2000) => (s.length > n ? s.slice(-n) : s);

/** A free TCP port on 127.0.0.1 (bound and released; a small race, fine on a bench box). */
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

function tcpOpen(port) {
  return new Promise((resolve) => {
    const c = connect({ host: '127.0.0.1', port });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** Byte counters of the loopback interface: { rx, tx } or null. Every lo packet counts in both. */
function loCounters() {
  try {
    for (const line of readFileSync('/proc/net/dev', 'utf8').split('\n')) {
      const m = /^\s*lo:\s*(.*)$/.exec(line);
      if (!m) continue;
      const f = m[1].trim().split(/\s+/).map(Number);
      return { rx: f[0], tx: f[8] };
    }
  } catch {
    /* no /proc */
  }
  return null;
}

/** CPU ticks (self + reaped children) and I/O counters (incl. reaped children) of a process. */
function procCounters(pid) {
  if (!pid) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ": state=f[0], utime=f[11], stime=f[12], cutime=f[13], cstime=f[14].
    const ticks = [11, 12, 13, 14].reduce((a, i) => a + Number(f[i]), 0);
    const io = {};
    for (const line of readFileSync(`/proc/${pid}/io`, 'utf8').split('\n')) {
      const m = /^(\w+):\s*(\d+)/.exec(line);
      if (m) io[m[1]] = Number(m[2]);
    }
    return { ticks, io };
  } catch {
    return null;
  }
}

function childrenOf(pid) {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((t) =>
      readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean),
    );
  } catch {
    return [];
  }
}

/** Waits (up to timeoutMs) until a server has reaped its per-connection children. */
async function waitNoChildren(pid, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  while (childrenOf(pid).length && Date.now() < end) await sleep(20);
}

function du(path) {
  if (!existsSync(path)) return null;
  return Number(sh('du -sb "$1" | cut -f1', path).trim());
}

/** Sum of every sample of a Prometheus counter in exposition text, or null when absent. */
export function promCounter(text, name) {
  let sum = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^(\w+)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && m[1] === name) sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}

/** Total bytes sent/received from `rsync --stats` output (client's view), or null. */
export function rsyncStats(text) {
  const num = (re) => {
    const m = re.exec(text);
    return m ? Number(m[1].replace(/[,.]/g, '')) : null;
  };
  const sent = num(/Total bytes sent:\s*([\d,.]+)/);
  const received = num(/Total bytes received:\s*([\d,.]+)/);
  if (sent == null || received == null) return null;
  return {
    sent,
    received,
    literal: num(/Literal data:\s*([\d,.]+)/),
    matched: num(/Matched data:\s*([\d,.]+)/),
  };
}

/** restic's own report of a backup: parent snapshot and "Added to the repository". */
function resticSummary(text) {
  const parent = /using parent snapshot (\w+)/.exec(text)?.[1] ?? null;
  const added = /Added to the repository: (.*)/.exec(text)?.[1]?.trim() ?? null;
  const snapshot = /snapshot (\w+) saved/.exec(text)?.[1] ?? null;
  return { parent, noParent: /no parent snapshot found/.test(text), added, snapshot };
}

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

/** Replaces `stage`'s contents with hard links to the files of `from` (copies across devices). */
function stageFrom(stage, from) {
  removeTree(stage);
  mkdirSync(stage, { recursive: true });
  const walk = (a, b) => {
    for (const e of readdirSync(a, { withFileTypes: true })) {
      const x = join(a, e.name);
      const y = join(b, e.name);
      if (e.isDirectory()) {
        mkdirSync(y);
        walk(x, y);
        utimesSync(y, MTIME, MTIME);
      } else {
        try {
          linkSync(x, y);
        } catch (err) {
          if (err.code !== 'EXDEV') throw err;
          copyFileSync(x, y);
          utimesSync(y, MTIME, MTIME);
        }
      }
    }
  };
  walk(from, stage);
  utimesSync(stage, MTIME, MTIME);
}

/** Installs restic with apt when it is missing (the store case compares against it). */
export function ensureRestic(log) {
  if (spawnSync('restic', ['version']).status === 0) return;
  log('restic missing: apt-get install -y restic');
  const r = spawnSync('apt-get', ['install', '-y', 'restic'], { encoding: 'utf8' });
  if (r.status !== 0) log(`apt-get install restic failed: ${(r.stderr || '').trim().slice(-300)}`);
}

// ---- servers ------------------------------------------------------------------------------

const live = new Set();
let exitHookInstalled = false;
function track(child) {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of live) {
        try {
          process.kill(c.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    });
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** Spawns a server with stdout+stderr to logFile; not detached, so Ctrl-C reaches it too. */
function spawnServer(argv, { cwd, logFile }) {
  mkdirSync(dirname(logFile), { recursive: true });
  const fd = openSync(logFile, 'w');
  const child = spawn(argv[0], argv.slice(1), { cwd, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const srv = { argv, child, pid: child.pid, logFile, exit: null, spawnError: null };
  srv.exited = new Promise((resolve) => {
    child.once('error', (e) => {
      srv.spawnError = String(e);
      srv.exit = { code: null, signal: null };
      resolve();
    });
    child.once('exit', (code, signal) => {
      srv.exit = { code, signal };
      resolve();
    });
  });
  if (child.pid) track(child);
  return srv;
}

function serverLog(srv) {
  try {
    return tailText(readFileSync(srv.logFile, 'utf8'));
  } catch {
    return '';
  }
}

/** A failed pseudo-run describing a server problem, shaped like runMeasured's result. */
function serverFailure(srv, phase, why) {
  return {
    ok: false,
    phase,
    exitCode: srv?.exit?.code ?? null,
    signal: srv?.exit?.signal ?? null,
    timedOut: false,
    wallSec: 0,
    stdoutTail: '',
    stderrTail: `${why}\n${srv?.spawnError ?? ''}\n${srv ? serverLog(srv) : ''}`.trim(),
  };
}

/** Waits until ready() is true; fails when the server exits or after SERVER_START_SEC. */
async function waitReady(srv, ready) {
  const end = Date.now() + SERVER_START_SEC * 1000;
  while (Date.now() < end) {
    if (srv.exit) return `server exited (code ${srv.exit.code}, signal ${srv.exit.signal})`;
    if (await ready()) return null;
    await sleep(100);
  }
  return `server not ready after ${SERVER_START_SEC} s`;
}

/** SIGTERM by PID, SIGKILL if it has not exited after 10 s. Returns how it ended. */
async function stopServer(srv) {
  if (!srv?.pid || srv.exit) return srv?.exit ?? null;
  const t0 = Date.now();
  try {
    process.kill(srv.pid, 'SIGTERM');
  } catch {
    /* exited meanwhile */
  }
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    try {
      process.kill(srv.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, STOP_GRACE_MS);
  await srv.exited;
  clearTimeout(timer);
  return { ...srv.exit, killed, stopSec: (Date.now() - t0) / 1000 };
}

async function httpGet(url, token) {
  // A second try: fetch may reuse a kept-alive socket the server has just
  // closed (idle timeout), which fails the request without reaching the node.
  let error = null;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const res = await fetch(url, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
        signal: AbortSignal.timeout(5000),
      });
      return { status: res.status, text: await res.text() };
    } catch (e) {
      error = e;
    }
  }
  return {
    status: null,
    text: `${error}${error?.cause ? ` (${error.cause.message ?? error.cause})` : ''}`,
  };
}

// ---- tools ---------------------------------------------------------------------------------
// setup() starts what the tool needs and returns { ok, failure?, server?, env, argv, wire...,
// stored, restore }. Everything in setup is untimed.

function tongbuTool(ctx, dirs) {
  const bin = splitWords(ctx.tongbuBin ?? DEFAULT_TONGBU_BIN);
  const data = join(dirs.root, 'data');
  const state = join(dirs.root, 'upload.state');
  const url = (port) => `tongbu://127.0.0.1:${port}/${STORE_NAME}`;
  return {
    describe: {
      serve: [...bin, 'serve', '--data', data, '--listen', '127.0.0.1:PORT'],
      upload: [...bin, 'sync', 'SRC', url('PORT'), '--state', state],
      restore: [...bin, 'sync', url('PORT'), 'RESTORE', '--state', 'RESTORE.state'],
      env: 'TONGBU_TOKEN=$(cat DATA/admin.token)',
    },
    async setup() {
      const port = await freePort();
      const srv = spawnServer([...bin, 'serve', '--data', data, '--listen', `127.0.0.1:${port}`], {
        cwd: ctx.repo,
        logFile: join(dirs.root, 'serve.log'),
      });
      const base = `http://127.0.0.1:${port}`;
      const err = await waitReady(
        srv,
        async () => (await httpGet(`${base}/v1/health`)).status === 200,
      );
      if (err) return { ok: false, server: srv, failure: serverFailure(srv, 'serve', err) };
      const tokenFile = join(data, 'admin.token');
      let token = null;
      for (let i = 0; i < 50 && !token; i++) {
        if (existsSync(tokenFile)) token = readFileSync(tokenFile, 'utf8').trim() || null;
        if (!token) await sleep(100);
      }
      if (!token) {
        return {
          ok: false,
          server: srv,
          failure: serverFailure(srv, 'serve', `no admin token in ${tokenFile}`),
        };
      }
      const listening = serverLog(srv).includes(`listening on ${base}`);
      return {
        ok: true,
        server: srv,
        port,
        listeningLine: listening,
        env: { TONGBU_TOKEN: token },
        argv: (src) => [...bin, 'sync', src, url(port), '--state', state],
        stored: data,
        async wireCounters() {
          const r = await httpGet(`${base}/metrics`, token);
          if (r.status !== 200) return { error: `GET /metrics: ${r.status ?? r.text}` };
          const received = promCounter(r.text, 'tongbu_net_bytes_received_total');
          const sent = promCounter(r.text, 'tongbu_net_bytes_sent_total');
          if (received == null || sent == null) return { error: 'counters missing in /metrics' };
          return { received, sent };
        },
        wire(before, after) {
          if (!before || !after || before.error || after.error) {
            return { error: before?.error ?? after?.error ?? 'no counters' };
          }
          const up = after.received - before.received;
          const down = after.sent - before.sent;
          return { source: 'server /metrics', up, down, total: up + down };
        },
        restoreArgv: (dst, st) => [...bin, 'sync', url(port), dst, '--state', st],
        restoreRoot: (dst) => dst,
      };
    },
  };
}

function rsyncDaemonTool(ctx, dirs) {
  const dst = join(dirs.root, 'dst');
  const conf = join(dirs.root, 'rsyncd.conf');
  const url = (port) => `rsync://127.0.0.1:${port}/${STORE_NAME}/`;
  const config = [
    'use chroot = false',
    `log file = ${join(dirs.root, 'rsyncd.log')}`,
    `[${STORE_NAME}]`,
    `  path = ${dst}`,
    '  read only = false',
    '  uid = root',
    '  gid = root',
    '',
  ].join('\n');
  return {
    describe: {
      serve: [
        'rsync',
        '--daemon',
        '--no-detach',
        '--config',
        conf,
        '--port',
        'PORT',
        '--address',
        '127.0.0.1',
      ],
      upload: ['rsync', '-a', '--stats', 'SRC/', url('PORT')],
      config,
    },
    async setup() {
      mkdirSync(dst, { recursive: true });
      writeFileSync(conf, config);
      const port = await freePort();
      const srv = spawnServer(
        [
          'rsync',
          '--daemon',
          '--no-detach',
          '--config',
          conf,
          '--port',
          String(port),
          '--address',
          '127.0.0.1',
        ],
        { cwd: ctx.repo, logFile: join(dirs.root, 'daemon.out') },
      );
      const err = await waitReady(srv, () => tcpOpen(port));
      if (err) return { ok: false, server: srv, failure: serverFailure(srv, 'serve', err) };
      return {
        ok: true,
        server: srv,
        port,
        env: {},
        argv: (src) => ['rsync', '-a', '--stats', `${src}/`, url(port)],
        stored: dst,
        wire(_b, _a, r) {
          const s = rsyncStats(r.stdoutTail ?? '');
          if (!s) return { error: 'no --stats totals in rsync output' };
          return {
            source: 'rsync --stats',
            up: s.sent,
            down: s.received,
            total: s.sent + s.received,
            literal: s.literal,
            matched: s.matched,
          };
        },
        restoreArgv: null, // the destination is a plain directory: compared directly
        restoreRoot: () => dst,
      };
    },
  };
}

function resticTool(ctx, dirs) {
  const repo = join(dirs.root, 'repo');
  const cache = join(dirs.root, 'cache');
  const r = ['restic', '-r', repo, '--cache-dir', cache];
  return {
    describe: {
      init: [...r, 'init'],
      upload: [...r, 'backup', 'SRC', '--host', 'bench'],
      restore: [...r, 'restore', 'latest', '--host', 'bench', '--target', 'RESTORE'],
      env: `RESTIC_PASSWORD=${RESTIC_PASSWORD}`,
    },
    async setup() {
      const env = { RESTIC_PASSWORD };
      const init = await withEnv(env, () => ctx.measure([...r, 'init']));
      if (!init.ok) return { ok: false, failure: { ...init, phase: 'restic init' } };
      const cfg = await withEnv(env, () => ctx.measure([...r, 'cat', 'config']));
      let repoVersion = null;
      try {
        repoVersion = JSON.parse(cfg.stdoutTail).version ?? null;
      } catch {
        /* unknown */
      }
      return {
        ok: true,
        server: null,
        repoVersion,
        env,
        argv: (src) => [...r, 'backup', src, '--host', 'bench'],
        stored: repo,
        wire: () => null, // local repository: nothing crosses a network
        restoreArgv: (dst) => [...r, 'restore', 'latest', '--host', 'bench', '--target', dst],
        restoreRoot: (dst, stage) => join(dst, stage), // restic restores the absolute path
      };
    },
  };
}

const TOOL_DEFS = { tongbu: tongbuTool, 'rsync-daemon': rsyncDaemonTool, restic: resticTool };

// ---- the case ------------------------------------------------------------------------------

function describeRun(r) {
  const st = r.ok
    ? 'ok'
    : `FAILED (${r.verifyError ?? (r.timedOut ? 'timeout' : r.phase !== 'run' ? `${r.phase}` : `exit ${r.exitCode}`)})`;
  const parts = [`${r.wallSec.toFixed(3)} s`, st];
  if (r.throughput) parts.push(`${(r.throughput / 1e6).toFixed(0)} MB/s`);
  if (r.wire?.total != null) parts.push(`wire ${(r.wire.total / 1e6).toFixed(1)} MB`);
  if (r.loBytes != null) parts.push(`lo ${(r.loBytes / 1e6).toFixed(1)} MB`);
  if (r.writeBytesTotal != null) parts.push(`wrote ${(r.writeBytesTotal / 1e6).toFixed(1)} MB`);
  if (r.storedBytes != null) parts.push(`stored ${(r.storedBytes / 1e6).toFixed(1)} MB`);
  return parts.join(', ');
}

/** Verifies what the store holds against `expect` (a cached workload dir); null when equal. */
async function verifyStore(ctx, s, expect, stage, tmp) {
  let root = s.restoreRoot(tmp, stage);
  if (s.restoreArgv) {
    removeTree(tmp);
    const st = `${tmp}.state`;
    removeTree(st);
    const r = await withEnv(s.env, () => ctx.measure(s.restoreArgv(tmp, st)));
    removeTree(st);
    if (!r.ok) {
      removeTree(tmp);
      return `restore failed (exit ${r.exitCode}): ${errorGist(r) || 'no output'}`;
    }
  }
  if (!existsSync(root)) root = tmp;
  const err = compareTree(treeSummary(expect), root) ?? compareContent(expect, root);
  if (s.restoreArgv) removeTree(tmp);
  return err;
}

async function oneRun(ctx, opts, tool, i, dirs, def) {
  const rec = { run: i, ok: false, w2: null, w3: null, setup: null, serverStop: null };
  removeTree(dirs.root);
  mkdirSync(dirs.root, { recursive: true });
  const s = await def.setup();
  rec.setup = {
    ok: s.ok,
    port: s.port ?? null,
    serverArgv: s.server?.argv ?? null,
    listeningLine: s.listeningLine ?? null,
    repoVersion: s.repoVersion ?? null,
  };
  const tag = (p) => `[${ctx.caseName}] run ${i}/${opts.runs} ${tool} ${PHASES[p]}`;
  if (!s.ok) {
    rec.serverStop = await stopServer(s.server);
    rec.w2 = { ...s.failure, run: i };
    rec.w3 = { ...s.failure, run: i };
    ctx.log(`${tag('w2')}: FAILED (${s.failure.phase}): ${errorGist(s.failure)}`);
    removeTree(dirs.root);
    return rec;
  }
  for (const p of ['w2', 'w3']) {
    if (p === 'w3' && !rec.w2.ok && !rec.w2.verifyError) {
      rec.w3 = { ...rec.w2, run: i, phase: 'w2-upload', wire: null, loBytes: null };
      ctx.log(`${tag(p)}: skipped (W2 upload failed)`);
      break;
    }
    const from = ctx.workloads[p];
    stageFrom(ctx.stage, from);
    warm(ctx.stage);
    flush();
    const wireBefore = s.wireCounters ? await s.wireCounters() : null;
    const srvBefore = procCounters(s.server?.pid);
    const loBefore = loCounters();
    const r = {
      ...(await withEnv(s.env, () => ctx.measure(s.argv(ctx.stage)))),
      tool,
      phase: 'run',
      run: i,
    };
    if (s.server) await waitNoChildren(s.server.pid);
    const loAfter = loCounters();
    const srvAfter = procCounters(s.server?.pid);
    const wireAfter = s.wireCounters ? await s.wireCounters() : null;
    r.load1 = loadavg()[0];
    r.loBytes = loBefore && loAfter ? loAfter.rx - loBefore.rx : null;
    r.wire = s.wire(wireBefore, wireAfter, r);
    // lo also counts other loopback traffic on the machine: flag a run where it clearly did.
    r.loExcessBytes = r.loBytes == null ? null : r.loBytes - (r.wire?.total ?? 0);
    if (r.loExcessBytes != null && r.loExcessBytes > 1e6 + 0.05 * (r.wire?.total ?? 0)) {
      ctx.log(
        `${tag(p)}: note: lo counted ${(r.loExcessBytes / 1e6).toFixed(1)} MB more than the ` +
          'tool reported: other loopback traffic on the machine during the run?',
      );
    }
    r.server =
      srvBefore && srvAfter
        ? {
            cpuSec: (srvAfter.ticks - srvBefore.ticks) / CLK_TCK,
            writeBytes: (srvAfter.io.write_bytes ?? 0) - (srvBefore.io.write_bytes ?? 0),
            readBytes: (srvAfter.io.read_bytes ?? 0) - (srvBefore.io.read_bytes ?? 0),
            wchar: (srvAfter.io.wchar ?? 0) - (srvBefore.io.wchar ?? 0),
          }
        : null;
    r.writeBytesTotal =
      r.io?.write_bytes != null ? r.io.write_bytes + (r.server?.writeBytes ?? 0) : null;
    if (tool === 'restic') {
      r.restic = resticSummary(r.stdoutTail ?? '');
      // W3 must use the W2 snapshot as parent (same host, same absolute path): recorded + logged.
      if (p === 'w3') r.restic.parentIsW2 = r.restic.parent === rec.w2?.restic?.snapshot;
      if (p === 'w3' && r.ok && !r.restic.parentIsW2) {
        ctx.log(`${tag(p)}: WARNING restic did not use the W2 snapshot as parent`);
      }
    }
    if (s.server?.exit) {
      r.ok = false;
      r.serverDied = s.server.exit;
      r.stderrTail = `${r.stderrTail}\nserver exited: ${serverLog(s.server)}`;
    }
    flush();
    r.storedBytes = du(s.stored);
    if (r.ok && opts.verify !== 'none') {
      r.verifyError = await verifyStore(ctx, s, from, ctx.stage, dirs.restore);
      if (r.verifyError) r.ok = false;
    }
    if (r.ok && p === 'w2') r.throughput = ctx.bytes.w2 / r.wallSec;
    rec[p] = r;
    ctx.log(`${tag(p)}: ${describeRun(r)}`);
    if (!r.ok) ctx.log(`${tag(p)}   stderr: ${errorGist(r)}`);
    flush();
  }
  rec.serverStop = await stopServer(s.server);
  rec.ok = Boolean(rec.w2?.ok && rec.w3?.ok);
  removeTree(dirs.root);
  removeTree(dirs.restore);
  return rec;
}

function stats(xs) {
  const v = xs.filter((x) => x !== null && x !== undefined && Number.isFinite(x));
  if (!v.length) return null;
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

function summarizePhase(c, p) {
  const out = {};
  for (const [tool, t] of Object.entries(c.tools)) {
    const rs = t.runs.map((x) => x[p]).filter(Boolean);
    const ok = rs.filter((x) => x.ok);
    const failed = rs.filter((x) => !x.ok);
    out[tool] = {
      okRuns: ok.length,
      failedRuns: failed.length,
      wallSec: stats(ok.map((x) => x.wallSec)),
      throughput: stats(ok.map((x) => x.throughput)),
      wireBytes: stats(ok.map((x) => x.wire?.total)),
      wireUpBytes: stats(ok.map((x) => x.wire?.up)),
      loBytes: stats(ok.map((x) => x.loBytes)),
      writeBytes: stats(ok.map((x) => x.writeBytesTotal)),
      serverCpuSec: stats(ok.map((x) => x.server?.cpuSec)),
      maxRssKiB: stats(ok.map((x) => x.maxRssKiB)),
      storedBytes: stats(ok.map((x) => x.storedBytes)),
      failure: failed.length ? failureText(failed[failed.length - 1]) : null,
    };
  }
  return out;
}

const ratio = (a, b) => (a != null && b != null && b > 0 ? a / b : null);

function storeRatios(summary) {
  const w2 = summary[PHASES.w2];
  const w3 = summary[PHASES.w3];
  const tb = (s) => s.tongbu;
  const rs = (s) => s['rsync-daemon'];
  const rc = (s) => s.restic;
  const values = {
    w3WireTongbuRsync: ratio(tb(w3)?.wireBytes?.median, rs(w3)?.wireBytes?.median),
    w3WireLoTongbuRsync: ratio(tb(w3)?.loBytes?.median, rs(w3)?.loBytes?.median),
    w3TimeTongbuRsync: ratio(tb(w3)?.wallSec?.median, rs(w3)?.wallSec?.median),
    w3TimeTongbuRestic: ratio(tb(w3)?.wallSec?.median, rc(w3)?.wallSec?.median),
    storedTongbuRestic: ratio(tb(w3)?.storedBytes?.median, rc(w3)?.storedBytes?.median),
    w2ThroughputTongbuRsync: ratio(tb(w2)?.throughput?.median, rs(w2)?.throughput?.median),
    w2ThroughputTongbuRestic: ratio(tb(w2)?.throughput?.median, rc(w2)?.throughput?.median),
  };
  const targets = {};
  for (const [k, t] of Object.entries(TARGETS)) {
    const v = values[k];
    targets[k] = {
      ...t,
      value: v,
      met: v == null ? null : t.le != null ? v <= t.le : v >= t.ge,
    };
  }
  return { ...values, targets };
}

/** Runs the store-w2-w3 case. ctx: { work, srcRoot, tmp, repo, log, tongbuBin }. */
export async function runStoreCase(caseName, opts, ctx0) {
  const def = { src: 'w3', base: 'w2' };
  const tools = toolsForCase(caseName, opts.tools);
  const root = join(ctx0.work, 'store');
  const workloads = { w2: join(ctx0.srcRoot, def.base), w3: join(ctx0.srcRoot, def.src) };
  const sizeOf = (d) => [...treeSummary(d).values()].reduce((a, [sz]) => a + sz, 0);
  const ctx = {
    ...ctx0,
    caseName,
    stage: join(root, 'src'),
    workloads,
    bytes: { w2: sizeOf(workloads.w2), w3: sizeOf(workloads.w3) },
    measure: (argv) =>
      runMeasured(argv, { cwd: ctx0.repo, tmpDir: ctx0.tmp, timeoutSec: opts.timeoutSec }),
  };
  const c = {
    kind: 'store',
    base: workloads.w2,
    src: workloads.w3,
    stage: ctx.stage,
    bytes: ctx.bytes,
    phases: PHASES,
    tools: {},
  };
  if (!tools.length) return c;
  const dirsOf = (t) => ({ root: join(root, t), restore: join(root, 'restore', t) });
  const defs = {};
  for (const t of tools) {
    defs[t] = TOOL_DEFS[t](ctx, dirsOf(t));
    c.tools[t] = { commands: defs[t].describe, runs: [] };
  }
  ctx.log(
    `== ${caseName} (store): tools ${tools.join(', ')}; source path ${ctx.stage} ` +
      '(hard links to W2, then W3); warming page cache (untimed)',
  );
  if (defs.tongbu) ctx.log(`tongbu store node: ${defs.tongbu.describe.serve.join(' ')}`);
  warm(workloads.w2);
  warm(workloads.w3);
  for (let i = 0; i < opts.runs; i++) {
    const order = tools.slice(i % tools.length).concat(tools.slice(0, i % tools.length));
    for (const t of order) {
      const rec = await oneRun(ctx, opts, t, i + 1, dirsOf(t), defs[t]);
      c.tools[t].runs.push(rec);
    }
  }
  removeTree(root);
  c.summary = { [PHASES.w2]: summarizePhase(c, 'w2'), [PHASES.w3]: summarizePhase(c, 'w3') };
  c.ratios = storeRatios(c.summary);
  return c;
}

// ---- report --------------------------------------------------------------------------------

const f2 = (x) => (x == null ? '-' : x.toFixed(x >= 100 ? 1 : x >= 10 ? 2 : 3));
const mb = (x) => (x == null ? '-' : (x / 1e6).toFixed(x >= 1e8 ? 0 : 1));
const rx = (x) => (x == null ? '-' : `${x.toFixed(2)}x`);

/** The store cases' table, ratios against the targets, and failures; '' when there are none. */
export function formatStoreReport(results) {
  const rows = [
    [
      'case',
      'tool',
      'ok',
      'median s',
      'min-max s',
      'MB/s',
      'wire MB',
      'lo MB',
      'written MB',
      'stored MB',
    ],
  ];
  const lines = [];
  const notes = [];
  for (const [caseName, c] of Object.entries(results.cases)) {
    if (c.kind !== 'store' || !c.summary) continue;
    for (const phase of Object.values(c.phases)) {
      for (const [tool, t] of Object.entries(c.summary[phase])) {
        rows.push([
          phase,
          tool,
          `${t.okRuns}/${t.okRuns + t.failedRuns}`,
          f2(t.wallSec?.median),
          t.wallSec ? `${f2(t.wallSec.min)}-${f2(t.wallSec.max)}` : '-',
          t.throughput ? (t.throughput.median / 1e6).toFixed(0) : '-',
          mb(t.wireBytes?.median),
          mb(t.loBytes?.median),
          mb(t.writeBytes?.median),
          mb(t.storedBytes?.median),
        ]);
        if (t.failure) notes.push(`${phase} ${tool}: ${t.failure}`);
      }
    }
    const r = c.ratios;
    for (const t of Object.values(r.targets)) {
      const bound = t.le != null ? `<= ${t.le}` : `>= ${t.ge}`;
      const met = t.met == null ? 'n/a' : t.met ? 'met' : 'NOT met';
      lines.push(`${t.what}: ${rx(t.value)} (target ${bound}: ${met})`);
    }
    lines.push(
      `also: W3 lo bytes tongbu/rsync-daemon ${rx(r.w3WireLoTongbuRsync)}, ` +
        `W3 time tongbu/restic ${rx(r.w3TimeTongbuRestic)}, ` +
        `W2 throughput tongbu/restic ${rx(r.w2ThroughputTongbuRestic)}`,
    );
    lines.push(`(${caseName}: W2 ${mb(c.bytes.w2)} MB, W3 ${mb(c.bytes.w3)} MB)`);
  }
  if (rows.length === 1) return '';
  let out = table(rows);
  out +=
    "\n\nMB/s = W2 bytes / median wall time. wire MB = the tool's own count, both directions " +
    '(tongbu: server /metrics counters; rsync: --stats sent+received; restic: local, none). ' +
    'lo MB = rx bytes of the loopback interface over the timed run (payload of both ' +
    'directions plus TCP/IP headers, and any other loopback traffic on the machine). ' +
    'written MB = write_bytes of client + server. stored MB = du -sb of the store after ' +
    'that upload (store-w3 row: after W2+W3; rsync keeps only the latest version).';
  out += `\n\nRatios of medians (tongbu vs the others):\n  ${lines.join('\n  ')}`;
  if (notes.length)
    out += `\n\nFailures (last failing run's exit and stderr tail):\n  ${notes.join('\n  ')}`;
  return out;
}
