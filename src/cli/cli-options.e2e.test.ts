/**
 * Options a user reaches for, through the real CLI: the progress line, the
 * bandwidth limit, JSON output, filters, environment variables.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertBuilt,
  diffTrees,
  makeTempDir,
  parseJsonOutput,
  removeTempDirs,
  runCli,
  snapshotTree,
  writeTree,
} from '../test-support/cli.js';

beforeAll(() => assertBuilt());
afterAll(async () => removeTempDirs());

async function pair(files: Record<string, string | Buffer>) {
  const dir = await makeTempDir();
  const src = path.join(dir, 'src');
  writeTree(src, files);
  return { dir, src, dst: path.join(dir, 'dst'), state: path.join(dir, 'state.db') };
}

describe('cli options', () => {
  it('--progress draws files, bytes, rate and the phase on stderr; the summary line is on stdout', async () => {
    const p = await pair({
      'a.bin': Buffer.alloc(3 << 20, 1),
      'b/c.bin': Buffer.alloc(1 << 20, 2),
    });
    const r = await runCli(['sync', p.src, p.dst, '--state', p.state, '--progress']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/transfer +\d+\/2 files .*MiB/);
    expect(r.stdout).toMatch(/^sync: 2 copied, 4\.00 MiB/m);
  });

  it('--bwlimit holds the rate: 4 MiB at 2M per second takes at least 1.5 s', async () => {
    const p = await pair({ 'big.bin': Buffer.alloc(4 << 20, 7) });
    const r = await runCli(['copy', p.src, p.dst, '--state', p.state, '--bwlimit', '2M']);
    expect(r.code).toBe(0);
    expect(r.durationMs).toBeGreaterThanOrEqual(1500);
    expect(diffTrees(snapshotTree(p.src), snapshotTree(p.dst))).toEqual([]);
  });

  it('--json prints a summary a program can read, and verify --json lists differences', async () => {
    const p = await pair({ 'x.txt': 'x', 'y/z.txt': 'z' });
    const r = await runCli(['sync', p.src, p.dst, '--state', p.state, '--json']);
    const summary = parseJsonOutput<{ files: { copied: number }; errors: unknown[] }>(r.stdout);
    expect(summary.files.copied).toBe(2);
    expect(summary.errors).toEqual([]);
    fs.writeFileSync(path.join(p.dst, 'y', 'z.txt'), 'Z');
    fs.writeFileSync(path.join(p.dst, 'extra'), '!');
    const v = await runCli(['verify', p.src, p.dst, '--json']);
    expect(v.code).toBe(1);
    const report = parseJsonOutput<{
      equal: boolean;
      extra: string[];
      different: { key: string }[];
    }>(v.stdout);
    expect(report.equal).toBe(false);
    expect(report.extra).toEqual(['extra']);
    expect(report.different.map((d) => d.key)).toEqual(['y/z.txt']);
  });

  it('takes options from TONGBU_* variables, flags winning', async () => {
    const p = await pair({ 'keep.txt': 'k', 'skip.log': 's' });
    const r = await runCli(['copy', p.src, p.dst, '--state', p.state], {
      env: { TONGBU_EXCLUDE: '*.log' },
    });
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.join(p.dst, 'keep.txt'))).toBe(true);
    expect(fs.existsSync(path.join(p.dst, 'skip.log'))).toBe(false);
    const bad = await runCli(['copy', p.src, p.dst, '--state', p.state, '--transfers', '2'], {
      env: { TONGBU_TRANSFERS: 'many' },
    });
    expect(bad.code).toBe(0);
  });

  it('keeps NFC and NFD names apart, byte-exact, on a filesystem that does not fold them', async () => {
    const nfc = 'caf\u00e9.txt';
    const nfd = 'cafe\u0301.txt';
    const p = await pair({ [nfc]: 'composed', [nfd]: 'decomposed' });
    const r = await runCli(['sync', p.src, p.dst, '--state', p.state]);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(path.join(p.dst, nfc), 'utf8')).toBe('composed');
    expect(fs.readFileSync(path.join(p.dst, nfd), 'utf8')).toBe('decomposed');
  });
});
