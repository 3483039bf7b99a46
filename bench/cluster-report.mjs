// Summary and report of the cluster case: medians per variant and phase, the ratios against
// the issue's targets, and the tables printed at the end of a run.
import { RATE_PHASES } from './cluster-commits.mjs';
import { ETCD_HOST, NODES } from './cluster-nodes.mjs';
import { errorGist, failureText, median, table } from './report.mjs';

const MiB = 1024 * 1024;
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

function stats(xs) {
  const v = xs.filter((x) => x != null && Number.isFinite(x));
  if (!v.length) return null;
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

const ratio = (a, b) => (a != null && b != null && b > 0 ? a / b : null);
function uploadFailure(r) {
  if (r.phase === 'serve') return `nodes did not start: ${errorGist(r)}`;
  return failureText(r);
}

export function summarizeCluster(c) {
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

export function clusterRatios(c) {
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
