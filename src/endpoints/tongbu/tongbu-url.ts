/**
 * `tongbu://host:port[,host:port…]/namespace[/prefix][@ref]` (plain HTTP) and
 * `tongbus://…` (TLS). Several hosts are tried in order when one is down.
 */
import { TongbuError } from '../../core/errors.js';
import { validateKey } from '../../core/key.js';

export interface TongbuUrl {
  readonly url: string;
  readonly tls: boolean;
  /** `host:port` of each node, in the order given. */
  readonly hosts: readonly string[];
  readonly namespace: string;
  /** Key prefix inside the namespace, '' for all of it. */
  readonly prefix: string;
  /** Tag, branch or commit hash; undefined for the main head. */
  readonly ref?: string;
}

const NAMESPACE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const REF = /^(?:(?:heads|tags)\/)?[A-Za-z0-9][A-Za-z0-9._-]{0,127}$|^blake3:[0-9a-f]{64}$/;
const HOST = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

export function isTongbuUrl(spec: string): boolean {
  return /^tongbus?:\/\//i.test(spec);
}

export function parseTongbuUrl(spec: string): TongbuUrl {
  const bad = (why: string): never => {
    throw new TongbuError('BAD_URL', `${spec}: ${why}`, { data: { url: spec } });
  };
  const m = /^(tongbus?):\/\/([^/]*)(\/.*)?$/i.exec(spec);
  if (!m) return bad('expected tongbu://HOST:PORT/NAMESPACE[/PREFIX][@REF]');
  const tls = m[1]!.toLowerCase() === 'tongbus';
  const hosts = m[2]!.split(',').filter((h) => h !== '');
  if (hosts.length === 0) bad('no host');
  for (const h of hosts) if (!HOST.test(h)) bad(`host ${JSON.stringify(h)} must be HOST:PORT`);
  let path = (m[3] ?? '').replace(/^\/+/, '').replace(/\/+$/, '');
  let ref: string | undefined;
  const at = path.lastIndexOf('@');
  if (at >= 0 && REF.test(path.slice(at + 1))) {
    ref = path.slice(at + 1);
    path = path.slice(0, at).replace(/\/+$/, '');
  }
  const [namespace = '', ...rest] = path.split('/');
  if (!NAMESPACE.test(namespace)) {
    bad(namespace === '' ? 'no namespace' : `invalid namespace ${JSON.stringify(namespace)}`);
  }
  let prefix = '';
  if (rest.length > 0) {
    try {
      prefix = validateKey(rest.map(decodeURIComponent).join('/'));
    } catch (err) {
      bad(`invalid prefix: ${(err as Error).message}`);
    }
  }
  return { url: spec, tls, hosts, namespace, prefix, ...(ref !== undefined ? { ref } : {}) };
}
