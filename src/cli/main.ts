/**
 * The `tongbu` command: sync, copy and verify. Output: a live progress line
 * on a terminal, a one-line summary otherwise, `--json` for machines; errors
 * on stderr, naming the path; exit codes from the error table.
 *
 * Each command loads its own modules when it runs (`import()`), so that a
 * directory sync never pays for the server, the store, the cluster or the
 * table engines: start-up is a large part of a sync that finds nothing to do.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ERROR_TABLE, TongbuError, toTongbuError, type ErrorCode } from '../core/errors.js';
import type { ProgressListener } from '../core/progress.js';
import { isTableUrl } from '../endpoints/table/table-url.js';
import { parseSyncOptions, syncOptionsSchema } from '../sync/sync-options.js';
import type { SyncSummary } from '../sync/sync-summary.js';
import type { VerifyReport } from '../sync/verify.js';
import { flagsOf, helpFor, parseCommandLine } from './args.js';
import { formatBytes, formatDuration } from './format.js';
import { resolveToken } from './resolve-token.js';

const CLI_FLAGS = {
  json: { type: 'boolean' },
  progress: { type: 'boolean' },
  'no-progress': { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

const USAGE = `usage: tongbu <command> SRC DST [options]

commands:
  sync SRC DST      make DST a mirror of SRC (deletes extraneous entries, guarded)
  copy SRC DST      copy new and changed entries from SRC to DST; never deletes
  verify SRC DST    compare by content; exit 0 only when both hold the same data
  bisync A B        tables: two-way sync against the last synced state (--conflict POLICY)
  serve --data DIR [--listen HOST:PORT]   run a store node (tongbu serve --help)
  log URL           commits of a namespace (URL: tongbu://HOST:PORT/NS[@REF])
  diff URL@A URL@B  entries changed between two versions of a namespace
  tag URL@REF NAME  tag a version
  reset URL@REF     roll the namespace's main branch back (or forward) to REF
  token create|list|revoke --data DIR [--scope PATTERN:LEVEL]   access tokens of a node
  gc --data DIR [--keep-last N] [--keep-days D]   remove what no kept version needs
  cluster status|repair|scrub|remove URL   a replicated store (tongbu cluster help)

SRC and DST are directories, tongbu://HOST:PORT/NAMESPACE[/PREFIX][@REF] (tongbus:// for TLS),
or tables: 'sqlite:FILE?table=T', 'postgres://USER@HOST/DB?table=[SCHEMA.]T',
'mysql://USER@HOST/DB?table=T' (also key=COL[,COL] and where=SQL).

options:
${helpFor(flagsOf(syncOptionsSchema))}
  --json                    print the summary as JSON on stdout
  --progress, --no-progress force the live progress line on or off (default: on a terminal)
  -q, --quiet               print errors only
`;

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === 'version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let json = false;
  try {
    if (command === 'serve') {
      const { serveCommand } = await import('./serve-command.js');
      return await serveCommand(rest, version());
    }
    if (command === 'cluster') {
      const { clusterCommand } = await import('./cluster-commands.js');
      return await clusterCommand(rest);
    }
    if (['token', 'gc', 'log', 'diff', 'tag', 'reset'].includes(command)) {
      const store = await import('./store-commands.js');
      if (command === 'token') return await store.tokenCommand(rest);
      if (command === 'gc') return await store.gcCommand(rest);
      return await store.storeCommand(command, rest);
    }
    if (command !== 'sync' && command !== 'copy' && command !== 'verify' && command !== 'bisync') {
      throw new TongbuError('BAD_ARGUMENT', `unknown command "${command}" (try: tongbu help)`);
    }
    const line = parseCommandLine(rest, flagsOf(syncOptionsSchema), CLI_FLAGS);
    json = line.cli['json'] === true;
    if (line.cli['help'] === true) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (line.positionals.length !== 2) {
      throw new TongbuError(
        'BAD_ARGUMENT',
        `${command} needs SRC and DST (got ${line.positionals.length} paths)`,
      );
    }
    const options = parseSyncOptions(line.options);
    const [src, dst] = line.positionals as [string, string];
    const showProgress =
      line.cli['no-progress'] !== true &&
      line.cli['quiet'] !== true &&
      (line.cli['progress'] === true || process.stderr.isTTY === true);
    const bar = showProgress
      ? (await import('./progress-bar.js')).createProgressBar(process.stderr)
      : undefined;
    const onProgress: ProgressListener | undefined = bar ? (e) => bar.update(e) : undefined;
    if (involvesTable(src, dst) || command === 'bisync') {
      if (command === 'bisync' && !involvesTable(src, dst)) {
        throw new TongbuError(
          'BAD_ARGUMENT',
          'bisync works on two tables for now (sqlite:, postgres://, mysql://)',
        );
      }
      const { tableCommand } = await import('./table-commands.js');
      return await tableCommand({
        command,
        src,
        dst,
        options,
        json,
        quiet: line.cli['quiet'] === true,
        signal: controller.signal,
        ...(onProgress ? { onProgress } : {}),
      });
    }
    const token = resolveToken(options);
    const connect = {
      transfers: options.transfers,
      ...(token !== undefined ? { token } : {}),
      ...(options.replication !== undefined ? { replication: options.replication } : {}),
      ...(options.consistency !== undefined ? { consistency: options.consistency } : {}),
    };
    const { openEndpoint } = await import('../endpoints/open-endpoint.js');
    const source = await openEndpoint(src, connect);
    const destination = await openEndpoint(dst, {
      ...connect,
      ...(options.wholeFile ? { wholeFile: true } : {}),
      // Beside the sync state: the manifests uploaded, for the next upload of the same files.
      ...(options.dryRun ? {} : { manifestCache: join(dirname(options.state), 'manifests') }),
      ...(options.tag !== undefined ? { tag: options.tag } : {}),
    });
    try {
      if (command === 'verify') {
        const { runVerify } = await import('../sync/verify.js');
        const report = await runVerify({
          source,
          destination,
          include: options.include,
          exclude: options.exclude,
          signal: controller.signal,
          ...(onProgress ? { onProgress } : {}),
        });
        bar?.clear();
        printVerify(report, json, line.cli['quiet'] === true);
        if (report.errors.length > 0) return exitFor(report.errors.map((e) => e.code as ErrorCode));
        return report.equal ? 0 : ERROR_TABLE.DIFFERENT.exit;
      }
      const { runSync } = await import('../sync/sync-engine.js');
      const summary = await runSync({
        command,
        source,
        destination,
        options,
        signal: controller.signal,
        ...(onProgress ? { onProgress } : {}),
      });
      bar?.clear();
      printSummary(summary, json, line.cli['quiet'] === true);
      return summary.errors.length > 0 ? exitFor(summary.errors.map((e) => e.code)) : 0;
    } finally {
      bar?.clear();
      await Promise.all([source.close(), destination.close()]);
    }
  } catch (err) {
    const e = controller.signal.aborted
      ? new TongbuError('ABORTED', 'interrupted')
      : toTongbuError(err);
    if (json) process.stdout.write(`${JSON.stringify({ error: e.toJSON() })}\n`);
    process.stderr.write(`tongbu: ${e.message}\n`);
    if (e.code === 'INTERNAL' && err instanceof Error && err.stack)
      process.stderr.write(`${err.stack}\n`);
    return e.exitCode;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Both ends are tables: the table engine runs (one table beside files is a snapshot). */
function involvesTable(src: string, dst: string): boolean {
  return isTableUrl(src) && isTableUrl(dst);
}

/** One error code: its exit code; several: PARTIAL. */
function exitFor(codes: readonly ErrorCode[]): number {
  const distinct = new Set(codes);
  const only = distinct.size === 1 ? [...distinct][0] : undefined;
  return only !== undefined ? ERROR_TABLE[only].exit : ERROR_TABLE.PARTIAL.exit;
}

function printSummary(s: SyncSummary, json: boolean, quiet: boolean): void {
  for (const e of s.errors) process.stderr.write(`tongbu: ${e.message}\n`);
  if (!quiet) for (const w of s.warnings) process.stderr.write(`tongbu: warning: ${w}\n`);
  if (json) {
    process.stdout.write(`${JSON.stringify(s)}\n`);
    return;
  }
  if (quiet) return;
  if (s.dryRun)
    for (const a of s.plan ?? []) process.stdout.write(`${a.action.padEnd(8)} ${a.key}\n`);
  const rate =
    s.durationMs > 0 ? ` (${formatBytes((s.bytes.copied / s.durationMs) * 1000)}/s)` : '';
  const f = s.files;
  process.stdout.write(
    `${s.command}${s.dryRun ? ' (dry run, nothing written)' : ''}: ${f.copied} copied, ` +
      `${formatBytes(s.bytes.copied)}${s.dryRun ? '' : rate}; ${f.updated} updated, ${f.deleted} deleted, ` +
      `${f.unchanged} unchanged, ${f.dirsCreated} dirs, ${f.links} links` +
      `${s.errors.length ? `, ${s.errors.length} errors` : ''} in ${formatDuration(s.durationMs)}\n`,
  );
  if (s.commit) {
    const c = s.commit;
    process.stdout.write(
      `committed ${c.commit} (${c.entries} entries, ${formatBytes(c.uploadedBytes)} uploaded` +
        `${c.merged ? ', merged onto a newer head' : ''}` +
        `${c.tag !== undefined ? `, tagged ${c.tag}` : ''}` +
        `${c.replication ? `; ${c.replication.mode}: ${c.replication.replicas} of ${c.replication.wanted} replicas` : ''})\n`,
    );
  }
}

function printVerify(r: VerifyReport, json: boolean, quiet: boolean): void {
  for (const e of r.errors) process.stderr.write(`tongbu: ${e.message}\n`);
  if (json) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  if (!quiet) {
    for (const k of r.missing) process.stdout.write(`missing   ${k}\n`);
    for (const k of r.extra) process.stdout.write(`extra     ${k}\n`);
    for (const d of r.different) process.stdout.write(`different ${d.key} (${d.reason})\n`);
  }
  process.stdout.write(
    r.equal
      ? `verify: equal, ${r.compared} entries compared, ${formatBytes(r.bytesHashed)} hashed in ${formatDuration(r.durationMs)}\n`
      : `verify: DIFFERENT: ${r.missing.length} missing, ${r.extra.length} extra, ${r.different.length} different, ${r.errors.length} errors\n`,
  );
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return `tongbu ${pkg.version}`;
}
