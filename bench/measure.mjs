// Running one tool invocation and measuring it: wall time, peak RSS, exit code, bytes written.
//
// The command runs as
//   /usr/bin/time -f %M -o RSSFILE  bash -c 'TOOL ARGS...; cat /proc/$$/io > IOFILE'
// - wall time: process.hrtime.bigint() around spawn -> 'close' (includes the ~ms of time+bash).
// - peak RSS: GNU time's %M = ru_maxrss of its reaped children, i.e. the largest single process
//   of the tree (rsync's 3 processes are not summed), in KiB.
// - bytes written: Linux adds a reaped child's I/O counters to its parent's, so bash's
//   /proc/$$/io read after the tool exited holds the whole tool tree's counters (rchar, wchar,
//   read_bytes, write_bytes, ...). write_bytes counts bytes whose page-cache pages the tree
//   dirtied (what will reach the disk); wchar counts every write() incl. pipes between rsync's
//   processes.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const TIME_BIN = '/usr/bin/time';
export const HAVE_TIME = existsSync(TIME_BIN);
const WRAP = 'io="$1"; shift; "$@"; rc=$?; cat /proc/$$/io > "$io" 2>/dev/null; exit $rc';
const TAIL = 2000;

function tail(s) {
  return s.length > TAIL ? s.slice(-TAIL) : s;
}

function parseIo(text) {
  const io = {};
  for (const line of text.split('\n')) {
    const m = /^(\w+):\s*(\d+)/.exec(line);
    if (m) io[m[1]] = Number(m[2]);
  }
  return Object.keys(io).length ? io : null;
}

function parseRss(text) {
  const nums = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^\d+$/.test(l));
  return nums.length ? Number(nums[nums.length - 1]) : null;
}

/** Runs argv (an array) measured; never throws for a failing tool. */
export function runMeasured(argv, { cwd, tmpDir, timeoutSec }) {
  const rssFile = join(tmpDir, 'measure.rss');
  const ioFile = join(tmpDir, 'measure.io');
  rmSync(rssFile, { force: true });
  rmSync(ioFile, { force: true });
  const inner = ['bash', '-c', WRAP, 'bench-wrap', ioFile, ...argv];
  const full = HAVE_TIME ? [TIME_BIN, '-f', '%M', '-o', rssFile, ...inner] : inner;
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const t0 = process.hrtime.bigint();
    const child = spawn(full[0], full.slice(1), {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group, so a timeout can kill the whole tool tree
    });
    child.stdout.on('data', (d) => (stdout = tail(stdout + d)));
    child.stderr.on('data', (d) => (stderr = tail(stderr + d)));
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, timeoutSec * 1000);
    const finish = (exitCode, signal, spawnError) => {
      const wallSec = Number(process.hrtime.bigint() - t0) / 1e9;
      clearTimeout(timer);
      let rssText = '';
      let ioText = '';
      try {
        rssText = readFileSync(rssFile, 'utf8');
      } catch {
        /* missing */
      }
      try {
        ioText = readFileSync(ioFile, 'utf8');
      } catch {
        /* missing */
      }
      // GNU time writes "Command exited with non-zero status N" before %M: keep it out of stderr.
      resolve({
        ok: exitCode === 0 && !timedOut && !spawnError,
        exitCode,
        signal,
        timedOut,
        wallSec,
        maxRssKiB: parseRss(rssText),
        io: parseIo(ioText),
        stdoutTail: stdout,
        stderrTail: spawnError ? String(spawnError) : stderr,
      });
    };
    child.on('error', (e) => finish(null, null, e));
    child.on('close', (code, signal) => finish(code, signal, null));
  });
}

/** Runs an untimed helper bash script with positional args ($1...); throws when it fails. */
export function sh(script, ...args) {
  const r = spawnSync('bash', ['-c', script, 'bench', ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`'${script}' failed (${r.status}): ${r.stderr.slice(-500)}`);
  return r.stdout;
}

/** Flushes dirty pages (untimed), so one run's write-back does not land in the next one. */
export function flush() {
  sh('sync');
}

/** Reads every file of `dir` once (warm page cache); untimed. */
export function warm(dir) {
  sh('find "$1" -type f -print0 | xargs -0 -r cat -- | wc -c >/dev/null', dir);
}

/** Removes a directory tree; untimed. */
export function removeTree(dir) {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Relative path -> [size, mtime seconds] for every regular file under dir. */
export function treeSummary(dir) {
  const out = new Map();
  const walk = (abs, rel) => {
    for (const e of readdirSync(abs, { withFileTypes: true })) {
      const a = join(abs, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(a, r);
      else if (e.isFile()) {
        const st = statSync(a);
        out.set(r, [st.size, Math.floor(st.mtimeMs / 1000)]);
      } else out.set(r, ['other', 0]);
    }
  };
  walk(dir, '');
  return out;
}

/** Compares a destination with a source summary; returns null when equal, else a reason. */
export function compareTree(srcSummary, dst) {
  if (!existsSync(dst)) return 'destination missing';
  const d = treeSummary(dst);
  if (d.size !== srcSummary.size) return `file count ${d.size} != ${srcSummary.size}`;
  for (const [k, v] of srcSummary) {
    const w = d.get(k);
    if (!w) return `missing ${k}`;
    if (w[0] !== v[0]) return `size of ${k}: ${w[0]} != ${v[0]}`;
    if (w[1] !== v[1]) return `mtime of ${k}: ${w[1]} != ${v[1]}`;
  }
  return null;
}

/** Byte-for-byte comparison of two trees (diff -rq); null when equal, else a reason. */
export function compareContent(src, dst) {
  const r = spawnSync('diff', ['-rq', src, dst], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status === 0) return null;
  return `content differs: ${(r.stdout + r.stderr).split('\n').slice(0, 3).join('; ')}`;
}
