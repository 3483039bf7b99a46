/**
 * What a directory sync costs before it does anything, seen through Node's
 * own debug output: the modules it loads and the worker threads it starts.
 * Start-up is most of a sync that finds nothing to do.
 */
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertBuilt,
  makeTempDir,
  removeTempDirs,
  runCli,
  writeTree,
} from '../test-support/cli.js';

beforeAll(() => assertBuilt());
afterAll(async () => removeTempDirs());

/** Code a directory sync has no use for: other commands, endpoints and engines. */
const UNNEEDED = new RegExp(
  [
    String.raw`/dist/(server|store|cluster)/`,
    String.raw`/dist/cli/(serve-command|store-commands|cluster-commands|table-commands)\.js`,
    String.raw`/dist/endpoints/(postgres|mysql|sqlite|memory)/`,
    String.raw`/dist/endpoints/table/(?!table-url\.js)`,
    String.raw`/dist/endpoints/tongbu/(?!tongbu-url\.js)`,
    String.raw`/dist/sync/(table-|verify)`,
    String.raw`/node_modules/(pg|pg-copy-streams|mysql2|etcd3|@grpc|cockatiel|picomatch|@napi-rs)/`,
  ].join('|'),
);

/** The files of dist/ and node_modules/ a run loaded, and how many workers it started. */
function traced(stderr: string): { modules: string[]; workers: number } {
  const modules = stderr.match(/\/(?:dist|node_modules)\/[\w@./-]+\.(?:js|node)\b/g) ?? [];
  return {
    modules: [...new Set(modules)],
    workers: stderr.match(/create new worker/g)?.length ?? 0,
  };
}

describe('a directory sync', () => {
  it('loads only what it uses, and one with nothing to do starts no worker thread', async () => {
    const dir = await makeTempDir();
    const src = path.join(dir, 'src');
    writeTree(src, { 'a.txt': 'alpha', 'b/c.txt': 'gamma' });
    const args = ['sync', src, path.join(dir, 'dst'), '--state', path.join(dir, 'state.db')];
    const env = { NODE_DEBUG: 'esm,module,worker' };

    const first = await runCli(args, { env });
    expect(first.code).toBe(0);
    // Copying starts workers, and the trace shows it.
    expect(traced(first.stderr).workers).toBeGreaterThan(0);

    const again = await runCli(args, { env });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^sync: 0 copied/m);
    const { modules, workers } = traced(again.stderr);
    expect(modules.some((m) => m.endsWith('/dist/sync/sync-engine.js'))).toBe(true);
    expect(modules.filter((m) => UNNEEDED.test(m))).toEqual([]);
    expect(workers).toBe(0);
  });
});
