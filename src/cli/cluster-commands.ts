/**
 * `tongbu cluster status|repair|scrub|remove URL`: the state of a replicated
 * store as one of its nodes sees it, and the repairs an operator starts by
 * hand. URL is `tongbu://HOST:PORT[,HOST:PORT…]`: any node answers, the next
 * one when it is down.
 */
import { z } from 'zod/v3';
import type { ClusterStatus, RepairReport } from '../cluster/cluster-node.js';
import { TongbuError } from '../core/errors.js';
import { API_PREFIX } from '../endpoints/tongbu/protocol.js';
import { TongbuClient } from '../endpoints/tongbu/tongbu-client.js';
import { parseTongbuUrl } from '../endpoints/tongbu/tongbu-url.js';
import { flagsOf, parseCommandLine } from './args.js';
import { formatBytes, formatDuration } from './format.js';
import { parseOptions } from './parse-options.js';
import { resolveToken } from './resolve-token.js';

const clusterSchema = z.object({
  token: z.string().optional().describe('bearer token (prefer the variable to the flag)'),
  tokenFile: z.string().optional().describe('read the bearer token from this file'),
});

const CLI = { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } as const;

export const CLUSTER_USAGE = `usage: tongbu cluster status URL      nodes, health, capacity, lag, under-replicated chunks
       tongbu cluster repair URL      run anti-entropy on the node URL names, now
       tongbu cluster scrub URL       re-hash every chunk of that node, repair damaged ones
       tongbu cluster remove URL ID   forget node ID for good; its chunks get new replicas
       tongbu cluster mode URL NS MODE   writes to namespace NS default to MODE (sync, quorum,
                                      async; 'default' clears it)
URL: tongbu://HOST:PORT[,HOST:PORT…] (a namespace is not needed)
`;

const out = (text: string): void => void process.stdout.write(text);

export async function clusterCommand(argv: readonly string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const line = parseCommandLine(rest, flagsOf(clusterSchema), CLI);
  if (sub === undefined || line.cli['help'] === true || sub === 'help') {
    out(CLUSTER_USAGE);
    return sub === undefined ? 2 : 0;
  }
  const options = parseOptions(clusterSchema, line.options);
  const json = line.cli['json'] === true;
  const args = line.positionals;
  const wanted = sub === 'remove' ? 2 : sub === 'mode' ? 3 : 1;
  if (!['status', 'repair', 'scrub', 'remove', 'mode'].includes(sub) || args.length !== wanted) {
    throw new TongbuError(
      'BAD_ARGUMENT',
      `unknown or incomplete cluster command\n${CLUSTER_USAGE}`,
    );
  }
  // The URL needs no namespace here; parse it with a placeholder one.
  const spec = args[0]!.replace(/^(tongbus?:\/\/[^/]*)\/?$/i, '$1/cluster');
  const token = resolveToken(options);
  const client = new TongbuClient(parseTongbuUrl(spec), token !== undefined ? { token } : {});
  try {
    if (sub === 'status') {
      const status = (await client.json('GET', `${API_PREFIX}/cluster`)) as ClusterStatus;
      out(json ? `${JSON.stringify(status)}\n` : formatStatus(status));
      return status.nodes.every((n) => n.health === 'up') ? 0 : 1;
    }
    if (sub === 'remove') {
      const id = args[1]!;
      await client.json('DELETE', `${API_PREFIX}/cluster/members/${encodeURIComponent(id)}`);
      out(
        json
          ? `${JSON.stringify({ removed: id })}\n`
          : `removed ${id}; its chunks are re-replicated by anti-entropy\n`,
      );
      return 0;
    }
    if (sub === 'mode') {
      const [, ns, mode] = args as [string, string, string];
      const r = await client.json(
        'PUT',
        `${API_PREFIX}/cluster/replication/${encodeURIComponent(ns)}`,
        {
          mode: mode === 'default' ? null : mode,
        },
      );
      out(
        json
          ? `${JSON.stringify(r)}\n`
          : `${ns}: ${mode === 'default' ? 'the node default' : mode}\n`,
      );
      return 0;
    }
    const report = (await client.json('POST', `${API_PREFIX}/cluster/${sub}`, {})) as RepairReport;
    out(json ? `${JSON.stringify(report)}\n` : formatReport(report));
    return report.state === 'done' && report.remaining === 0 ? 0 : 1;
  } finally {
    client.close();
  }
}

function formatStatus(s: ClusterStatus): string {
  const lines = [
    `R=${s.replicas}, ${s.defaultMode} by default, leader ${s.leader ?? 'none'}; ` +
      `lag ${s.lag} chunk(s), ${s.underReplicated} under-replicated`,
  ];
  for (const n of s.nodes) {
    const st = n.status;
    const figures = st
      ? `${st.objects} objects, ${formatBytes(st.bytes)}` +
        (st.capacityBytes
          ? `, disk ${formatBytes(st.usedBytes ?? 0)} of ${formatBytes(st.capacityBytes)}`
          : '') +
        `, lag ${st.lag}` +
        (st.scrub
          ? `, scrub ${st.scrub.state} ${st.scrub.checked}/${st.scrub.total} (${st.scrub.found} damaged, ${st.scrub.repaired} repaired)`
          : '') +
        (st.repair
          ? `, repair ${st.repair.state} (${st.repair.repaired} pushed, ${st.repair.remaining} left)`
          : '')
      : (n.error ?? '');
    lines.push(
      `${n.health.padEnd(4)} ${n.id}  ${n.url}${st?.leader ? '  (leader)' : ''}  ${figures}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function formatReport(r: RepairReport): string {
  const took = (r.finishedMs ?? Date.now()) - r.startedMs;
  const rate = took > 0 ? ` (${formatBytes((r.repairedBytes / took) * 1000)}/s)` : '';
  const ranges =
    r.rangesCompared !== undefined
      ? `, ${r.rangesDiffering}/${r.rangesCompared} ranges differed`
      : '';
  return (
    `${r.kind} ${r.state}: ${r.checked} of ${r.total} objects checked${ranges}; ` +
    `${r.found} ${r.kind === 'scrub' ? 'damaged' : 'missing'} found, ${r.repaired} repaired, ` +
    `${formatBytes(r.repairedBytes)}${rate}, ${r.remaining} left, in ${formatDuration(took)}` +
    `${r.error ? `; ${r.error}` : ''}\n`
  );
}
