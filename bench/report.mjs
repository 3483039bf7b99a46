// Statistics over runs, ratios between tools, and the printed table.
import { BASELINES } from './tools.mjs';

export function median(xs) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function stats(xs) {
  const v = xs.filter((x) => x !== null && x !== undefined);
  if (!v.length) return null;
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

/** Per-tool summary of one case's results: { tool: { okRuns, failedRuns, wall, rssKiB, ... } } */
export function summarizeCase(caseResult) {
  const out = {};
  for (const [tool, r] of Object.entries(caseResult.tools)) {
    const ok = r.runs.filter((x) => x.ok);
    const failed = r.runs.filter((x) => !x.ok);
    const lastFail = failed[failed.length - 1] ?? (r.prepare && !r.prepare.ok ? r.prepare : null);
    out[tool] = {
      okRuns: ok.length,
      failedRuns: failed.length + (r.prepare && !r.prepare.ok ? 1 : 0),
      wallSec: stats(ok.map((x) => x.wallSec)),
      maxRssKiB: stats(ok.map((x) => x.maxRssKiB)),
      writeBytes: stats(ok.map((x) => x.io?.write_bytes)),
      wcharBytes: stats(ok.map((x) => x.io?.wchar)),
      failure: lastFail ? failureText(lastFail) : null,
    };
  }
  return out;
}

/** The informative part of a failing tool's output: its first error-like line and its last line. */
export function errorGist(r) {
  const lines = (r.stderrTail || r.stdoutTail || '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const err = lines.find((l) => /error|fatal|fail|cannot|denied|not found/i.test(l));
  const last = lines[lines.length - 1];
  return [err, last].filter((l, i, a) => l && a.indexOf(l) === i).join(' | ');
}

export function failureText(r) {
  const why = r.verifyError
    ? `verification failed: ${r.verifyError}`
    : r.timedOut
      ? 'timed out'
      : `exit ${r.exitCode}${r.signal ? ` (${r.signal})` : ''}`;
  const gist = errorGist(r);
  return `${r.phase ?? 'run'}: ${why}${gist ? `: ${gist}` : ''}`;
}

const ratio = (a, b) => (a != null && b != null && b > 0 ? a / b : null);

/** The baseline tool (other than `except`) with the lowest median wall time, or null. */
export function bestBaseline(summary, except = null) {
  const present = BASELINES.filter((b) => b !== except && summary[b]?.wallSec);
  if (!present.length) return null;
  return present.reduce((x, y) => (summary[y].wallSec.median < summary[x].wallSec.median ? y : x));
}

/** Ratios of `tool`'s medians against every baseline and the best baseline. */
export function ratios(summary, tool = 'tongbu') {
  const me = summary[tool];
  if (!me) return null;
  const present = BASELINES.filter((b) => b !== tool && summary[b]?.wallSec);
  const out = { time: {}, writeBytes: {} };
  for (const b of present) {
    out.time[b] = ratio(me.wallSec?.median, summary[b].wallSec.median);
    out.writeBytes[b] = ratio(me.writeBytes?.median, summary[b].writeBytes?.median);
  }
  const best = bestBaseline(summary, tool);
  out.bestTool = best;
  out.time.best = best ? out.time[best] : null;
  const bestW = present
    .filter((b) => summary[b].writeBytes)
    .map((b) => summary[b].writeBytes.median);
  out.writeBytes.best = bestW.length ? ratio(me.writeBytes?.median, Math.min(...bestW)) : null;
  return out;
}

const f2 = (x) => (x == null ? '-' : x.toFixed(x >= 100 ? 1 : x >= 10 ? 2 : 3));
const mb = (x) => (x == null ? '-' : (x / 1e6).toFixed(x >= 1e8 ? 0 : 1));
const rx = (x) => (x == null ? '-' : `${x.toFixed(2)}x`);

export function table(rows) {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows
    .map((r, j) => {
      const line = r.map((c, i) => (i < 2 ? String(c).padEnd(w[i]) : String(c).padStart(w[i])));
      return j === 0
        ? `${line.join('  ')}\n${w.map((n) => '-'.repeat(n)).join('  ')}`
        : line.join('  ');
    })
    .join('\n');
}

/** The readable table: one row per case and tool, then tongbu's ratios and failures. */
export function formatReport(results) {
  const rows = [
    ['case', 'tool', 'ok', 'median s', 'min-max s', 'RSS MB', 'written MB', 'vs best', 'best'],
  ];
  const notes = [];
  const ratioLines = [];
  for (const [caseName, c] of Object.entries(results.cases)) {
    if (c.kind === 'store') continue; // own table: formatStoreReport in store-case.mjs
    const s = c.summary;
    const best = bestBaseline(s);
    for (const [tool, t] of Object.entries(s)) {
      rows.push([
        caseName,
        tool,
        `${t.okRuns}/${t.okRuns + t.failedRuns}`,
        f2(t.wallSec?.median),
        t.wallSec ? `${f2(t.wallSec.min)}-${f2(t.wallSec.max)}` : '-',
        t.maxRssKiB ? ((t.maxRssKiB.median * 1024) / 1e6).toFixed(0) : '-',
        mb(t.writeBytes?.median),
        rx(ratio(t.wallSec?.median, best ? s[best].wallSec.median : null)),
        best ?? '-',
      ]);
      if (t.failure) notes.push(`${caseName} ${tool}: ${t.failure}`);
    }
    const tr = c.ratios;
    if (tr && s.tongbu?.wallSec) {
      const parts = Object.entries(tr.time)
        .filter(([k]) => k !== 'best')
        .map(([k, v]) => `tongbu/${k} ${rx(v)}`);
      parts.push(`tongbu/best(${tr.bestTool}) ${rx(tr.time.best)}`);
      if (c.kind === 'update') {
        const wb = Object.entries(tr.writeBytes)
          .filter(([k]) => k !== 'best')
          .map(([k, v]) => `${k} ${rx(v)}`);
        parts.push(`bytes written tongbu/: ${wb.join(', ')}`);
      }
      ratioLines.push(`${caseName}: ${parts.join(', ')}`);
    }
  }
  if (rows.length === 1) return '';
  let out = table(rows);
  out += '\n\n"vs best" = median wall time / median of the fastest of rsync, rsync-delta, rclone.';
  out += '\nAll runs warm-cache; medians of interleaved runs. Single times are noise.';
  if (ratioLines.length)
    out += `\n\nRatios of medians (<1 = tongbu faster):\n  ${ratioLines.join('\n  ')}`;
  if (notes.length)
    out += `\n\nFailures (last failing run's exit and stderr tail):\n  ${notes.join('\n  ')}`;
  return out;
}
