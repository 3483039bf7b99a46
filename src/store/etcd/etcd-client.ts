/**
 * The connection to etcd and what every call shares. Unary calls have a
 * deadline, and a call is tried on another host only when it never reached
 * one: a compare-and-swap whose answer was lost is an error, never a second
 * attempt that says false. Failures become a {@link TongbuError}.
 */
import { handleWhen, isBrokenCircuitError, retry } from 'cockatiel';
import {
  Etcd3,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
  GRPCUnavailableError,
  Range,
  isRecoverableError,
  type IKeyValue,
  type Namespace,
} from 'etcd3';
import { TongbuError, type ErrorCode } from '../../core/errors.js';

/** Deadline of every unary call (and of setting up a watch). */
export const CALL_TIMEOUT_MS = 3000;
/** Pause before a lost lease, campaign or feed is set up again. */
export const RETRY_MS = 1000;
const PAGE = 1000;

/** Failures of a call that never reached a host: safe to try the next one. */
const unsent = (err: Error): boolean =>
  isBrokenCircuitError(err) ||
  (err instanceof GRPCUnavailableError && err.message.includes('No connection established'));

/** `etcd://h1:2379,h2:2379` or `http://…` → `['h1:2379', 'h2:2379']`. */
export function parseHosts(url: string): string[] {
  const m = /^(?:etcd|http):\/\/([^/]+)\/?$/i.exec(url);
  const hosts = (m?.[1] ?? '').split(',').filter(Boolean);
  if (hosts.length === 0) {
    throw new TongbuError('BAD_URL', `expected etcd://HOST:PORT[,HOST:PORT…], got ${url}`, {
      data: { url },
    });
  }
  return hosts.map((h) => (/:\d+$/.test(h) ? h : `${h}:2379`));
}

/** A client of `hosts` with the deadline and the retry policy above; it connects lazily. */
export function createEtcdClient(hosts: string[]): Etcd3 {
  return new Etcd3({
    hosts,
    defaultCallOptions: (context) =>
      context.isStream ? {} : { deadline: Date.now() + CALL_TIMEOUT_MS },
    faultHandling: { global: retry(handleWhen(unsent), { maxAttempts: hosts.length }) },
  });
}

/** `err`, from trying to `action` on the etcd at `address`, as a TongbuError. */
export function toTongbuError(err: unknown, address: string, action: string): TongbuError {
  if (err instanceof TongbuError) return err;
  const message = err instanceof Error ? err.message : String(err);
  let code: ErrorCode = 'INTERNAL';
  if (err instanceof EtcdPermissionDeniedError) code = 'PERMISSION_DENIED';
  else if (
    err instanceof EtcdAuthenticationFailedError ||
    err instanceof EtcdInvalidAuthTokenError
  ) {
    code = 'UNAUTHORIZED';
  } else if (err instanceof Error && (isRecoverableError(err) || isBrokenCircuitError(err))) {
    code = 'CONNECTION_FAILED';
  }
  return new TongbuError(code, `etcd at ${address}: cannot ${action}: ${message}`, {
    data: { url: address },
    cause: err,
  });
}

/** Every key under `prefix`, a page at a time, all at one revision. */
export async function rangeAll(
  ns: Namespace,
  prefix: string,
  atRevision?: string,
): Promise<{ kvs: IKeyValue[]; revision: string }> {
  const kvs: IKeyValue[] = [];
  const end = Range.prefix(prefix).end;
  let start = Buffer.from(prefix);
  let revision = atRevision;
  for (;;) {
    const query = ns.getAll().inRange({ start, end }).limit(PAGE);
    if (revision !== undefined) query.revision(revision);
    const res = await query.exec();
    revision ??= res.header.revision;
    kvs.push(...res.kvs);
    const last = res.kvs[res.kvs.length - 1];
    if (!res.more || last === undefined) return { kvs, revision };
    start = Buffer.concat([last.key, Buffer.from([0])]);
  }
}
