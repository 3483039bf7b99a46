/**
 * Helpers for end-to-end tests of the built CLI: run `bin/tongbu.js` in a
 * real process, make and remove temp trees, and snapshot a tree (kind, mode,
 * size, mtime, content hash or link target) to compare two of them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root and the built CLI. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(REPO_ROOT, 'bin', 'tongbu.js');
export const TEMP_PREFIX = '.tongbu-tmp-';

export interface CliResult {
  /** Exit code, or null when the process died of a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
}

export interface CliOptions {
  readonly cwd?: string;
  /** Run as this user and group (needs root); supplementary groups are dropped. */
  readonly uid?: number;
  readonly gid?: number;
  readonly env?: NodeJS.ProcessEnv;
  /** Kill the process (SIGKILL) after this long; the test then fails on its result. */
  readonly timeoutMs?: number;
}

export interface RunningCli {
  readonly child: ChildProcess;
  readonly done: Promise<CliResult>;
}

/** Throws a clear error when the CLI has not been built. */
export function assertBuilt(): void {
  if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error(`${REPO_ROOT}/dist is missing: run \`npm run build\` before the e2e tests`);
  }
}

/** Starts `node bin/tongbu.js ...args`, capturing stdout and stderr. */
export function startCli(args: readonly string[], options: CliOptions = {}): RunningCli {
  assertBuilt();
  const started = performance.now();
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  // The CLI reads TONGBU_* options from the environment: keep the tests hermetic.
  for (const name of Object.keys(env)) {
    if (name.startsWith('TONGBU_') && !(options.env && name in options.env)) delete env[name];
  }
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? os.tmpdir(),
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.uid === undefined ? {} : { uid: options.uid }),
    ...(options.gid === undefined ? {} : { gid: options.gid }),
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (b: Buffer) => out.push(b));
  child.stderr?.on('data', (b: Buffer) => err.push(b));
  const timer =
    options.timeoutMs === undefined
      ? undefined
      : setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
  const done = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        durationMs: performance.now() - started,
      });
    });
  });
  return { child, done };
}

/** Runs the CLI to completion (default time limit: 50 s). */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, { timeoutMs: 50_000, ...options }).done;
}

/** The JSON document of a `--json` run: the last non-empty line of stdout. */
export function parseJsonOutput<T = Record<string, unknown>>(stdout: string): T {
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  const last = lines[lines.length - 1];
  if (last === undefined) throw new Error('no JSON on stdout');
  return JSON.parse(last) as T;
}

const tempDirs: string[] = [];

/** A new directory under os.tmpdir(), removed by {@link removeTempDirs}. */
export async function makeTempDir(prefix = 'tongbu-e2e-'): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** Removes every directory made by {@link makeTempDir}, unlocking modes first. */
export async function removeTempDirs(): Promise<void> {
  for (const dir of tempDirs.splice(0)) {
    await chmodTree(dir, 0o700).catch(() => undefined);
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** Gives every directory below `root` at least `mode` (so a non-root user can clean up). */
export async function chmodTree(root: string, mode: number): Promise<void> {
  const stat = await fsp.lstat(root);
  if (!stat.isDirectory()) return;
  await fsp.chmod(root, (stat.mode & 0o7777) | mode);
  for (const name of await fsp.readdir(root)) await chmodTree(path.join(root, name), mode);
}

/** Changes the owner of a whole tree (no links followed). */
export async function chownTree(root: string, uid: number, gid: number): Promise<void> {
  await fsp.lchown(root, uid, gid);
  const stat = await fsp.lstat(root);
  if (!stat.isDirectory()) return;
  for (const name of await fsp.readdir(root)) await chownTree(path.join(root, name), uid, gid);
}

export interface TreeEntry {
  readonly kind: 'file' | 'dir' | 'symlink' | 'other';
  readonly mode: number;
  readonly size: number;
  readonly mtimeMs: number;
  /** sha256 hex of a file's content. */
  readonly sha256?: string;
  /** A symlink's target. */
  readonly target?: string;
}

/** A raw name as a string: UTF-8 when valid, otherwise bytes >= 0x80 as \xNN. */
export function nameOf(raw: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    return [...raw]
      .map((b) => (b < 0x80 ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`))
      .join('');
  }
}

export function sha256File(file: string | Buffer): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;)
      hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * Every entry below `root` (not `root` itself) by relative path. Names are
 * read as bytes, so a name that is not UTF-8 shows as \xNN rather than U+FFFD.
 * Temp files are included: use {@link findTemps} to look for them alone.
 */
export function snapshotTree(root: string): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>();
  const walk = (dir: Buffer, rel: string): void => {
    for (const raw of fs.readdirSync(dir, { encoding: 'buffer' })) {
      const full = Buffer.concat([dir, Buffer.from('/'), raw]);
      const key = rel === '' ? nameOf(raw) : `${rel}/${nameOf(raw)}`;
      const st = fs.lstatSync(full);
      const base = { mode: st.mode & 0o7777, size: st.size, mtimeMs: st.mtimeMs };
      if (st.isDirectory()) {
        out.set(key, { kind: 'dir', ...base, size: 0 });
        walk(full, key);
      } else if (st.isSymbolicLink()) {
        out.set(key, { kind: 'symlink', ...base, target: fs.readlinkSync(full, 'utf8') });
      } else if (st.isFile()) {
        out.set(key, { kind: 'file', ...base, sha256: sha256File(full) });
      } else {
        out.set(key, { kind: 'other', ...base });
      }
    }
  };
  walk(Buffer.from(root), '');
  return out;
}

/**
 * The differences between two snapshots, one line each (empty: equal).
 * Symlink modes are not compared; mtimes are equal within the tolerance.
 */
export function diffTrees(
  expected: ReadonlyMap<string, TreeEntry>,
  actual: ReadonlyMap<string, TreeEntry>,
  { mtimeToleranceMs = 1, compareMtimes = true } = {},
): string[] {
  const diffs: string[] = [];
  for (const [key, e] of expected) {
    const a = actual.get(key);
    if (a === undefined) {
      diffs.push(`missing ${key}`);
      continue;
    }
    if (a.kind !== e.kind) diffs.push(`${key}: kind ${a.kind}, expected ${e.kind}`);
    else if (e.kind === 'file' && (a.size !== e.size || a.sha256 !== e.sha256))
      diffs.push(`${key}: content differs (${a.size} bytes, expected ${e.size})`);
    else if (e.kind === 'symlink' && a.target !== e.target)
      diffs.push(`${key}: target ${a.target}, expected ${e.target}`);
    if (a.kind === e.kind && e.kind !== 'symlink' && a.mode !== e.mode)
      diffs.push(`${key}: mode ${a.mode.toString(8)}, expected ${e.mode.toString(8)}`);
    if (compareMtimes && Math.abs(a.mtimeMs - e.mtimeMs) > mtimeToleranceMs)
      diffs.push(`${key}: mtime ${a.mtimeMs}, expected ${e.mtimeMs}`);
  }
  for (const key of actual.keys()) if (!expected.has(key)) diffs.push(`extra ${key}`);
  return diffs;
}

/** Paths (relative to `root`) of leftover `.tongbu-tmp-*` files anywhere below it. */
export function findTemps(root: string): string[] {
  return [...snapshotTree(root).keys()].filter((k) =>
    path.posix.basename(k).startsWith(TEMP_PREFIX),
  );
}

/** Writes files given by relative path (parents created). */
export function writeTree(root: string, files: Record<string, string | Buffer>): void {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
  }
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Lets other users (the tests that run the CLI as uid 65534) reach the
 * checkout: adds o+x to each ancestor directory that lacks it (a clone
 * under `mktemp -d` sits in a 0700 directory). Returns the undo.
 */
export function openCheckoutToOthers(): () => void {
  const changed: [string, number][] = [];
  for (let dir = REPO_ROOT; ; dir = path.dirname(dir)) {
    const mode = fs.statSync(dir).mode & 0o7777;
    if ((mode & 0o001) === 0) {
      fs.chmodSync(dir, mode | 0o001);
      changed.push([dir, mode]);
    }
    if (path.dirname(dir) === dir) break;
  }
  return () => {
    for (const [dir, mode] of changed) fs.chmodSync(dir, mode);
  };
}
