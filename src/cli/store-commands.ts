/**
 * Commands on versions of a tongbu namespace: log, diff, tag, reset
 * (rollback by moving the branch), and on a node's data directory: token and
 * gc.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod/v3';
import { TongbuError } from '../core/errors.js';
import type { ContentHash } from '../core/hash.js';
import { TongbuClient } from '../endpoints/tongbu/tongbu-client.js';
import { parseTongbuUrl, type TongbuUrl } from '../endpoints/tongbu/tongbu-url.js';
import { createToken } from '../server/auth.js';
import { catalogPath, openNodeData } from '../server/node-data.js';
import type { Catalog } from '../store/catalog.js';
import { openClusterCatalog } from '../store/open-catalog.js';
import { SqliteCatalog } from '../store/sqlite-catalog.js';
import type { Commit } from '../store/commit.js';
import { collectGarbage } from '../store/gc.js';
import type { TreeDiff } from '../store/prolly-tree.js';
import { flagsOf, parseCommandLine } from './args.js';
import { formatBytes } from './format.js';
import { parseOptions } from './parse-options.js';
import { resolveToken } from './resolve-token.js';

const clientSchema = z.object({
  token: z.string().optional().describe('bearer token (prefer the variable to the flag)'),
  tokenFile: z.string().optional().describe('read the bearer token from this file'),
  limit: z.coerce.number().int().min(1).max(1000).default(50).describe('log: commits shown'),
  message: z.string().optional().describe('reset: message (unused by log and diff)'),
});

const CLI = { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;

function clientFor(
  url: string,
  token: string | undefined,
): { client: TongbuClient; target: TongbuUrl } {
  const target = parseTongbuUrl(url);
  return { client: new TongbuClient(target, token !== undefined ? { token } : {}), target };
}

const out = (text: string): void => void process.stdout.write(text);
const short = (hash: string): string => hash.slice(7, 19);

export async function storeCommand(command: string, argv: readonly string[]): Promise<number> {
  const line = parseCommandLine(argv, flagsOf(clientSchema), CLI);
  const options = parseOptions(clientSchema, line.options);
  const json = line.cli['json'] === true;
  const token = resolveToken(options);
  const args = line.positionals;
  const need = (n: number, usage: string): void => {
    if (args.length !== n)
      throw new TongbuError('BAD_ARGUMENT', `usage: tongbu ${command} ${usage}`);
  };
  if (command === 'log') {
    need(1, 'tongbu://HOST:PORT/NAMESPACE[@REF]');
    const { client, target } = clientFor(args[0]!, token);
    try {
      const q = new URLSearchParams({
        limit: String(options.limit),
        ...(target.ref ? { ref: target.ref } : {}),
      });
      const r = (await client.json('GET', `${client.nsPath('log')}?${q.toString()}`)) as {
        commits: (Commit & { hash: ContentHash })[];
        tags: { name: string; commit: string }[];
      };
      if (json) return (out(`${JSON.stringify(r)}\n`), 0);
      for (const c of r.commits) {
        const tags = r.tags.filter((t) => t.commit === c.hash).map((t) => t.name.slice(5));
        out(
          `${short(c.hash)}  ${new Date(c.timeMs).toISOString()}  ${String(c.entries).padStart(8)} entries` +
            `${tags.length ? `  (${tags.join(', ')})` : ''}${c.message ? `  ${c.message}` : ''}\n`,
        );
      }
      return 0;
    } finally {
      client.close();
    }
  }
  if (command === 'diff') {
    need(2, 'tongbu://HOST:PORT/NS@A tongbu://HOST:PORT/NS@B');
    const a = parseTongbuUrl(args[0]!);
    const b = parseTongbuUrl(args[1]!);
    if (a.namespace !== b.namespace || a.hosts.join() !== b.hosts.join()) {
      throw new TongbuError(
        'BAD_ARGUMENT',
        'diff compares two versions of one namespace on one node; use verify for two endpoints',
      );
    }
    const { client } = clientFor(args[0]!, token);
    try {
      const q = new URLSearchParams({ from: a.ref ?? 'heads/main', to: b.ref ?? 'heads/main' });
      const r = (await client.json('GET', `${client.nsPath('diff')}?${q.toString()}`)) as {
        from: string;
        to: string;
        changes: TreeDiff[];
      };
      if (json) return (out(`${JSON.stringify(r)}\n`), 0);
      for (const c of r.changes)
        out(`${c.before === undefined ? '+' : c.after === undefined ? '-' : 'M'} ${c.key}\n`);
      out(`diff ${short(r.from)}..${short(r.to)}: ${r.changes.length} changed\n`);
      return 0;
    } finally {
      client.close();
    }
  }
  if (command === 'tag' || command === 'reset') {
    need(
      command === 'tag' ? 2 : 1,
      command === 'tag' ? 'tongbu://HOST:PORT/NS@REF NAME' : 'tongbu://HOST:PORT/NS@REF',
    );
    const { client, target } = clientFor(args[0]!, token);
    try {
      const spec = target.ref ?? 'heads/main';
      const { commit } = (await client.json('GET', client.nsPath('refs', spec))) as {
        commit: ContentHash;
      };
      const ref = command === 'tag' ? `tags/${args[1]!}` : 'heads/main';
      const expected =
        command === 'tag'
          ? null
          : ((await client.json('GET', client.nsPath('refs', 'heads/main'))) as { commit: string })
              .commit;
      await client.json('POST', client.nsPath('refs', ...ref.split('/')), { commit, expected });
      out(`${ref} -> ${short(commit)}\n`);
      return 0;
    } finally {
      client.close();
    }
  }
  throw new TongbuError('BAD_ARGUMENT', `unknown command "${command}"`);
}

const tokenSchema = z.object({
  data: z.string().describe('data directory of the node'),
  scope: z
    .array(z.string())
    .default([])
    .describe("PATTERN:read|write|admin, e.g. 'llama/*:write' (repeatable)"),
  label: z.string().default('').describe('a note stored with the token'),
  catalog: z
    .string()
    .optional()
    .describe('a cluster node: the catalog its tokens live in (etcd://… or sqlite:PATH)'),
});

/** A cluster node keeps its refs and tokens in the cluster catalog, not in DIR. */
function refuseClusterDir(dir: string, what: string): void {
  if (existsSync(join(dir, 'node.id'))) {
    throw new TongbuError('BAD_ARGUMENT', `${dir} belongs to a cluster node: ${what}`);
  }
}

export async function tokenCommand(argv: readonly string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const line = parseCommandLine(rest, flagsOf(tokenSchema), CLI);
  const options = parseOptions(tokenSchema, line.options);
  let catalog: Catalog;
  if (options.catalog !== undefined) catalog = await openClusterCatalog(options.catalog);
  else {
    refuseClusterDir(options.data, 'give its --catalog');
    catalog = SqliteCatalog.open(catalogPath(options.data));
  }
  try {
    if (sub === 'create') {
      const { token, record } = await createToken(catalog, options.scope, options.label);
      process.stderr.write(`tongbu: token ${record.id} with scopes ${record.scopes.join(' ')}\n`);
      out(`${token}\n`);
      return 0;
    }
    if (sub === 'list') {
      for (const t of await catalog.listTokens()) {
        out(`${t.id}  ${new Date(t.createdMs).toISOString()}  ${t.scopes.join(' ')}  ${t.label}\n`);
      }
      return 0;
    }
    if (sub === 'revoke' && line.positionals.length === 1) {
      const ok = await catalog.removeToken(line.positionals[0]!);
      if (!ok) throw new TongbuError('NOT_FOUND', `no token ${line.positionals[0]!}`);
      out(`revoked ${line.positionals[0]!}\n`);
      return 0;
    }
    throw new TongbuError(
      'BAD_ARGUMENT',
      'usage: tongbu token create|list|revoke ID --data DIR [--scope S] [--catalog URL]',
    );
  } finally {
    await catalog.close();
  }
}

const gcSchema = z.object({
  data: z.string().describe('data directory of the node'),
  keepLast: z.coerce.number().int().min(1).default(10).describe('newest commits kept per branch'),
  keepDays: z.coerce
    .number()
    .min(0)
    .default(7)
    .describe('commits younger than this many days are kept'),
  graceMinutes: z.coerce
    .number()
    .min(0)
    .default(60)
    .describe('objects touched more recently are never removed'),
  dryRun: z.boolean().default(false).describe('report what would be removed'),
});

export async function gcCommand(argv: readonly string[]): Promise<number> {
  const line = parseCommandLine(argv, flagsOf(gcSchema), CLI);
  const options = parseOptions(gcSchema, line.options);
  refuseClusterDir(options.data, 'gc of a replicated store is not supported yet');
  const data = await openNodeData(options.data, { bootstrap: false });
  try {
    const r = await collectGarbage(data.store, {
      keepLast: options.keepLast,
      keepDays: options.keepDays,
      graceMs: options.graceMinutes * 60_000,
      dryRun: options.dryRun,
    });
    if (line.cli['json'] === true) out(`${JSON.stringify(r)}\n`);
    else
      out(
        `gc${options.dryRun ? ' (dry run)' : ''}: ${r.commitsKept} commits kept, ${r.objectsKept} objects live, ` +
          `${r.objectsRemoved} removed (${formatBytes(r.bytesRemoved)}), ${r.objectsInGrace} unreferenced but within grace\n`,
      );
    return 0;
  } finally {
    data.store.chunks.close();
    await data.store.catalog.close();
  }
}
