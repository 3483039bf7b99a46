/**
 * End-to-end: what a user sees when `tongbu` cannot do what was asked. Each
 * case runs the built CLI and checks the exit code from ERROR_TABLE, that the
 * message names the path or flag, and that nothing half-written is left.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_TABLE } from '../core/errors.js';
import {
  assertBuilt,
  chownTree,
  CLI,
  diffTrees,
  findTemps,
  makeTempDir,
  nameOf,
  openCheckoutToOthers,
  parseJsonOutput,
  removeTempDirs,
  runCli,
  snapshotTree,
  writeTree,
} from '../test-support/cli.js';

const exit = (code: keyof typeof ERROR_TABLE): number => ERROR_TABLE[code].exit;
const requireServices = process.env['TONGBU_REQUIRE_SERVICES'] === '1';
/** Root bypasses permission bits: the permission cases run the CLI as nobody. */
const asRoot = process.getuid?.() === 0;
const NOBODY = { uid: 65534, gid: 65534 };

let work: string;
let n = 0;
/** A fresh case directory with `src` (holding `files`), `dst` path and state file. */
function setup(files: Record<string, string | Buffer> = { a: 'alpha', 'sub/b': 'beta' }) {
  const dir = path.join(work, `case${n++}`);
  const src = path.join(dir, 'src');
  fs.mkdirSync(src, { recursive: true });
  writeTree(src, files);
  return { dir, src, dst: path.join(dir, 'dst'), state: path.join(dir, 'state.db') };
}

beforeAll(async () => {
  assertBuilt();
  work = await makeTempDir('tongbu-cli-errors-');
  fs.chmodSync(work, 0o755);
});
afterAll(removeTempDirs);

describe('tongbu refuses bad paths before writing anything', () => {
  it('reports a missing source by name and does not create the destination', async () => {
    const { dir, dst, state } = setup();
    const missing = path.join(dir, 'no-such-dir');
    const r = await runCli(['sync', missing, dst, '--state', state]);
    expect(r.code).toBe(exit('SOURCE_NOT_FOUND'));
    expect(r.stderr).toContain(missing);
    expect(fs.existsSync(dst)).toBe(false);
  });

  it('reports a source that is a file, not a directory', async () => {
    const { src, dst, state } = setup();
    const file = path.join(src, 'a');
    const r = await runCli(['copy', file, dst, '--state', state]);
    expect(r.code).toBe(exit('NOT_A_DIRECTORY'));
    expect(r.stderr).toContain(file);
    expect(fs.existsSync(dst)).toBe(false);
  });

  it('refuses a destination equal to or inside the source, and a source inside the destination', async () => {
    const { dir, src, state } = setup();
    const before = snapshotTree(dir);
    const same = await runCli(['sync', src, src, '--state', state]);
    expect(same.code).toBe(exit('DEST_INSIDE_SOURCE'));
    expect(same.stderr).toContain(src);
    const inner = path.join(src, 'sub', 'mirror');
    const inside = await runCli(['sync', src, inner, '--state', state]);
    expect(inside.code).toBe(exit('DEST_INSIDE_SOURCE'));
    expect(inside.stderr).toContain(inner);
    const outer = path.join(src, 'sub');
    const around = await runCli(['sync', outer, src, '--state', state]);
    expect(around.code).toBe(exit('SOURCE_INSIDE_DEST'));
    expect(around.stderr).toContain(outer);
    expect(diffTrees(before, snapshotTree(dir))).toEqual([]);
  });
});

describe('unreadable source entries', () => {
  const user = asRoot ? NOBODY : {};
  let undo = (): void => undefined;
  beforeAll(() => {
    if (asRoot) undo = openCheckoutToOthers();
  });
  afterAll(() => undo());
  const handOver = async (dir: string): Promise<void> => {
    if (asRoot) await chownTree(dir, NOBODY.uid, NOBODY.gid);
  };

  it('names an unreadable file, copies the others and exits non-zero', async () => {
    const c = setup({ a: 'alpha', secret: 'hidden', 'sub/b': 'beta' });
    fs.chmodSync(path.join(c.src, 'secret'), 0o000);
    await handOver(c.dir);
    const r = await runCli(['copy', c.src, c.dst, '--state', c.state], user);
    expect(r.code).toBe(exit('PERMISSION_DENIED'));
    expect(r.stderr).toContain(path.join(c.src, 'secret'));
    expect(fs.readFileSync(path.join(c.dst, 'a'), 'utf8')).toBe('alpha');
    expect(fs.readFileSync(path.join(c.dst, 'sub/b'), 'utf8')).toBe('beta');
    expect(fs.existsSync(path.join(c.dst, 'secret'))).toBe(false);
    expect(findTemps(c.dst)).toEqual([]);
  });

  it('names an unreadable directory and then deletes nothing at the destination', async () => {
    const files: Record<string, string> = { 'locked/inner': 'x' };
    for (const k of ['a', 'b', 'c', 'd', 'e']) files[k] = `content of ${k}`;
    const c = setup(files);
    writeTree(c.dst, { a: 'old a', extra1: 'keep me', 'old/extra2': 'keep me too' });
    fs.chmodSync(path.join(c.src, 'locked'), 0o000);
    await handOver(c.dir);
    const r = await runCli(['sync', c.src, c.dst, '--state', c.state], user);
    expect(r.code).toBe(exit('PERMISSION_DENIED'));
    expect(r.stderr).toContain(path.join(c.src, 'locked'));
    expect(r.stderr).toMatch(/warning: .*no deletions/);
    for (const k of ['a', 'b', 'c', 'd', 'e'])
      expect(fs.readFileSync(path.join(c.dst, k), 'utf8')).toBe(`content of ${k}`);
    expect(fs.readFileSync(path.join(c.dst, 'extra1'), 'utf8')).toBe('keep me');
    expect(fs.readFileSync(path.join(c.dst, 'old/extra2'), 'utf8')).toBe('keep me too');
    expect(findTemps(c.dst)).toEqual([]);
  });

  it('names an unwritable destination directory and still copies every other file', async () => {
    const files: Record<string, string> = { 'locked/inner': 'x' };
    for (let i = 0; i < 20; i++) files[`f${i}`] = `file ${i}`;
    const c = setup(files);
    fs.mkdirSync(path.join(c.dst, 'locked'), { recursive: true });
    fs.chmodSync(path.join(c.dst, 'locked'), 0o000);
    await handOver(c.dir);
    const r = await runCli(['copy', c.src, c.dst, '--state', c.state], user);
    expect(r.code, r.stderr).toBe(exit('PERMISSION_DENIED'));
    expect(r.stderr).toContain(path.join(c.dst, 'locked'));
    for (let i = 0; i < 20; i++)
      expect(fs.readFileSync(path.join(c.dst, `f${i}`), 'utf8')).toBe(`file ${i}`);
    fs.chmodSync(path.join(c.dst, 'locked'), 0o700);
    expect(findTemps(c.dst)).toEqual([]);
  });
});

/** Mounts a small filesystem on `dir`: tmpfs, else a loop-mounted ext4 image. */
function mountSmallFs(dir: string, image: string): string | undefined {
  const run = (cmd: string, args: string[]): void =>
    void execFileSync(cmd, args, { stdio: 'pipe' });
  const problems: string[] = [];
  try {
    run('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir]);
    return undefined;
  } catch (err) {
    problems.push(`tmpfs: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`);
  }
  try {
    run('truncate', ['-s', '8M', image]);
    run('mkfs.ext4', ['-q', image]);
    run('mount', ['-o', 'loop', image, dir]);
    return undefined;
  } catch (err) {
    problems.push(`loop ext4: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`);
  }
  return `cannot mount a small filesystem here (${problems.join('; ')})`;
}

describe('a full destination disk', () => {
  it('fails with NO_SPACE, leaves no temp files and no truncated file', async (ctx) => {
    const c = setup({});
    const files: Record<string, Buffer> = { big: Buffer.alloc(9 << 20, 0x42) };
    for (let i = 0; i < 10; i++) files[`f${i}`] = Buffer.alloc(300_000, 0x61 + i);
    writeTree(c.src, files);
    const mnt = path.join(c.dir, 'mnt');
    fs.mkdirSync(mnt);
    const problem = mountSmallFs(mnt, path.join(c.dir, 'disk.img'));
    if (problem !== undefined) {
      if (requireServices) throw new Error(problem);
      ctx.skip(problem);
    }
    try {
      const dst = path.join(mnt, 'dst');
      const r = await runCli(['copy', c.src, dst, '--state', c.state]);
      expect(r.code).toBe(exit('NO_SPACE'));
      expect(r.stderr).toContain(dst);
      expect(findTemps(dst)).toEqual([]);
      const present = Object.keys(files).filter((k) => fs.existsSync(path.join(dst, k)));
      for (const k of present)
        expect(fs.readFileSync(path.join(dst, k)).equals(files[k]!)).toBe(true);
      expect(present.length).toBeGreaterThan(0);
      expect(present).not.toContain('big');
      expect(fs.readdirSync(dst).sort()).toEqual(present.sort());
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});

describe('a source file that changes while it is copied', () => {
  it('copies one consistent version or reports FILE_CHANGED, never a mix', async () => {
    const c = setup({});
    const size = 64 << 20;
    const file = path.join(c.src, 'growing');
    fs.writeFileSync(file, Buffer.alloc(size, 1));
    // Rewrites the file in place, version k being all byte k, for ~1.5 s.
    const writer = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('fs'); const [file, size, ms] = process.argv.slice(1);
         const fd = fs.openSync(file, 'r+'); const end = Date.now() + Number(ms);
         for (let k = 2; Date.now() < end || k === 2; k++) {
           const block = Buffer.alloc(4 << 20, k % 256);
           for (let off = 0; off < Number(size); off += block.length) fs.writeSync(fd, block, 0, block.length, off);
           if (k === 2) process.stdout.write('ready\\n');
         }`,
        file,
        String(size),
        '1500',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise<number | null>((resolve) => writer.once('close', resolve));
    await new Promise<void>((resolve) => writer.stdout.once('data', () => resolve()));
    const r = await runCli(['copy', c.src, c.dst, '--state', c.state]);
    expect(await exited).toBe(0);
    const copied = path.join(c.dst, 'growing');
    if (r.code === 0) {
      const bytes = fs.readFileSync(copied);
      expect(bytes.length).toBe(size);
      const first = bytes[0]!;
      expect(bytes.every((b) => b === first)).toBe(true);
    } else {
      expect(r.code).toBe(exit('FILE_CHANGED'));
      expect(r.stderr).toContain(file);
      expect(fs.existsSync(copied)).toBe(false);
    }
    expect(findTemps(c.dst)).toEqual([]);
  });
});

describe('bad command lines exit 2 and name the flag', () => {
  it.each([
    [['--bogus'], '--bogus'],
    [['--transfers', '0'], '--transfers'],
    [['--transfers', 'many'], '--transfers'],
    [['--bwlimit', 'abc'], '--bwlimit'],
    [['--max-delete', 'x'], '--max-delete'],
    [['--mode', 'fast'], '--mode'],
  ])('%j', async (flags, named) => {
    const { src, dst, state } = setup();
    const r = await runCli(['sync', src, dst, '--state', state, ...flags]);
    expect(r.code).toBe(exit('BAD_ARGUMENT'));
    expect(r.stderr).toContain(named);
    expect(fs.existsSync(dst)).toBe(false);
  });

  it('a missing DST', async () => {
    const { src, state } = setup();
    const r = await runCli(['sync', src, '--state', state]);
    expect(r.code).toBe(exit('BAD_ARGUMENT'));
    expect(r.stderr).toContain('DST');
  });
});

describe('the mass-delete guard', () => {
  const extras: Record<string, string> = {};
  for (let i = 0; i < 10; i++) extras[`extra${i}`] = `extra ${i}`;

  it('refuses before writing anything; --max-delete lets it through; copy never deletes', async () => {
    const c = setup({ a: 'alpha', b: 'beta' });
    writeTree(c.dst, extras);
    const before = snapshotTree(c.dst);
    const refused = await runCli(['sync', c.src, c.dst, '--state', c.state]);
    expect(refused.code).toBe(exit('MASS_DELETE'));
    expect(refused.stderr).toContain(c.dst);
    expect(diffTrees(before, snapshotTree(c.dst))).toEqual([]);

    const copied = await runCli(['copy', c.src, c.dst, '--state', c.state]);
    expect(copied.code).toBe(0);
    expect([...snapshotTree(c.dst).keys()].sort()).toEqual(['a', 'b', ...Object.keys(extras)]);

    const allowed = await runCli(['sync', c.src, c.dst, '--state', c.state, '--max-delete', '20']);
    expect(allowed.code).toBe(0);
    expect(diffTrees(snapshotTree(c.src), snapshotTree(c.dst))).toEqual([]);
  });

  it('--force lets it through', async () => {
    const c = setup({ a: 'alpha', b: 'beta' });
    writeTree(c.dst, extras);
    const r = await runCli(['sync', c.src, c.dst, '--state', c.state, '--force']);
    expect(r.code).toBe(0);
    expect(diffTrees(snapshotTree(c.src), snapshotTree(c.dst))).toEqual([]);
  });
});

describe('--dry-run', () => {
  it('writes nothing and prints the plan as JSON', async () => {
    const c = setup({ a: 'alpha', stale: 'new content', 'sub/b': 'beta' });
    writeTree(c.dst, { stale: 'old', extra: 'x' });
    const before = snapshotTree(c.dst);
    const r = await runCli(['sync', c.src, c.dst, '--state', c.state, '--dry-run', '--json']);
    expect(r.code).toBe(0);
    expect(diffTrees(before, snapshotTree(c.dst))).toEqual([]);
    const summary = parseJsonOutput<{ dryRun: boolean; plan: { action: string; key: string }[] }>(
      r.stdout,
    );
    expect(summary.dryRun).toBe(true);
    expect(summary.plan).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ action: 'copy', key: 'a' }),
        expect.objectContaining({ action: 'copy', key: 'stale' }),
        expect.objectContaining({ action: 'copy', key: 'sub/b' }),
        expect.objectContaining({ action: 'mkdir', key: 'sub' }),
        expect.objectContaining({ action: 'delete', key: 'extra' }),
      ]),
    );
  });

  it('does not create a missing destination', async () => {
    const c = setup();
    const r = await runCli(['sync', c.src, c.dst, '--state', c.state, '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('dry run');
    expect(fs.existsSync(c.dst)).toBe(false);
  });

  it('does not create the state file either', async () => {
    const c = setup();
    const state = path.join(c.dir, 'state-dir', 'state.db');
    const r = await runCli(['sync', c.src, c.dst, '--state', state, '--dry-run']);
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.dirname(state))).toBe(false);
  });
});

describe('output to a reader that goes away', () => {
  it('finishes the sync and exits 0 when stdout and stderr are closed early', async () => {
    const c = setup({ a: 'alpha', 'sub/b': 'beta', 'sub/c': 'gamma' });
    // As `tongbu sync ... 2>&1 | head -0`: the pipes close before the summary is printed.
    const child = spawn(process.execPath, [CLI, 'sync', c.src, c.dst, '--state', c.state], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy();
    child.stderr.destroy();
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    expect(diffTrees(snapshotTree(c.src), snapshotTree(c.dst))).toEqual([]);
  });
});

describe('a name that is not valid UTF-8', () => {
  it('is named with \\xff escaped, refused, and the other files are copied', async () => {
    const c = setup({ ok: 'fine', 'sub/ok2': 'fine too' });
    const bad = Buffer.concat([Buffer.from(`${c.src}/`), Buffer.from([0x66, 0xff, 0x6f])]);
    fs.writeFileSync(bad, 'x');
    const r = await runCli(['sync', c.src, c.dst, '--state', c.state]);
    expect(r.code).toBe(exit('KEY_NOT_UTF8'));
    expect(r.stderr).toContain(`${c.src}/f\\xffo`);
    const dst = snapshotTree(c.dst);
    expect([...dst.keys()].sort()).toEqual(['ok', 'sub', 'sub/ok2']);
    expect(fs.readdirSync(c.dst, { encoding: 'buffer' }).map(nameOf).sort()).toEqual(['ok', 'sub']);
    expect(fs.readFileSync(path.join(c.dst, 'sub/ok2'), 'utf8')).toBe('fine too');
  });

  it('names each of two such names by its own bytes', async () => {
    const c = setup({ ok: 'fine' });
    for (const b of [0xff, 0xfe])
      fs.writeFileSync(Buffer.concat([Buffer.from(`${c.src}/f`), Buffer.from([b, 0x6f])]), 'x');
    const r = await runCli(['copy', c.src, c.dst, '--state', c.state]);
    expect(r.code).toBe(exit('KEY_NOT_UTF8'));
    expect(r.stderr).toContain(`${c.src}/f\\xffo`);
    expect(r.stderr).toContain(`${c.src}/f\\xfeo`);
  });
});

describe('a store node of another address algorithm', () => {
  it('is refused by name before anything is sent to it', async () => {
    // Stands in for a node from before blake3 addresses: its health answer names no algorithm.
    const asked: string[] = [];
    const server = http.createServer((req, res) => {
      asked.push(`${req.method} ${req.url}`);
      if (req.url === '/v1/health') {
        const chunker = { minSize: 16384, avgSize: 65536, maxSize: 262144 };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: true, version: '0.0.9', chunker }));
      } else {
        res.writeHead(500).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const c = setup();
      const r = await runCli(['sync', c.src, `tongbu://127.0.0.1:${port}/llama`], {
        env: { ...process.env, TONGBU_TOKEN: 'secret' },
      });
      expect(r.code).toBe(exit('SCHEMA_MISMATCH'));
      expect(r.stderr).toContain('addresses chunks by sha256');
      expect(r.stderr).toContain('by blake3');
      expect(asked).toEqual(['GET /v1/health']);
    } finally {
      server.close();
    }
  });
});
