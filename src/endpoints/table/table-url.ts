/**
 * Table endpoint URLs:
 *   sqlite:./runs.db?table=runs        sqlite:///abs/path.db?table=runs
 *   postgres://user:pw@host:5432/db?table=public.runs   (postgresql:// too)
 *   mysql://root@127.0.0.1:3306/test?table=runs          (mariadb:// too)
 * Options: table (required), key=col[,col] when there is no primary key,
 * where=SQL filter applied to every read (passed verbatim to the engine).
 * Credentials come from the URL or the engine's usual environment
 * (PGUSER/PGPASSWORD…, MYSQL_PWD).
 */
import { TongbuError } from '../../core/errors.js';
import type { TableEngine } from './table-endpoint.js';

export interface TableUrl {
  readonly engine: Exclude<TableEngine, 'memory'>;
  /** The URL with the password replaced by `***`. */
  readonly display: string;
  readonly table: string;
  readonly key?: readonly string[];
  readonly where?: string;
  /** sqlite: the database file path. */
  readonly path?: string;
  /** postgres/mysql: connection parts. */
  readonly host?: string;
  readonly port?: number;
  readonly user?: string;
  readonly password?: string;
  readonly database?: string;
}

const ENGINES: Record<string, TableUrl['engine']> = {
  sqlite: 'sqlite',
  postgres: 'postgres',
  postgresql: 'postgres',
  mysql: 'mysql',
  mariadb: 'mysql',
};

export function isTableUrl(spec: string): boolean {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(spec)?.[1]?.toLowerCase();
  return scheme !== undefined && scheme in ENGINES;
}

export function parseTableUrl(spec: string): TableUrl {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(spec)?.[1]?.toLowerCase() ?? '';
  const engine = ENGINES[scheme];
  if (engine === undefined) throw new TongbuError('BAD_URL', `${spec}: not a table URL`);
  const q = spec.indexOf('?');
  const params = new URLSearchParams(q < 0 ? '' : spec.slice(q + 1));
  const table = params.get('table') ?? '';
  const shown = redact(spec);
  if (table === '') {
    throw new TongbuError('BAD_URL', `${shown}: name the table with ?table=NAME`, {
      data: { url: shown },
    });
  }
  const keyParam = params.get('key');
  const key =
    keyParam === null
      ? undefined
      : keyParam
          .split(',')
          .map((k) => k.trim())
          .filter((k) => k !== '');
  const where = params.get('where') ?? undefined;
  const common = {
    engine,
    display: shown,
    table,
    ...(key !== undefined && key.length > 0 ? { key } : {}),
    ...(where !== undefined && where !== '' ? { where } : {}),
  };
  if (engine === 'sqlite') {
    let path = decodeURIComponent(spec.slice(scheme.length + 1, q < 0 ? undefined : q));
    if (path.startsWith('//')) path = path.slice(2);
    if (path === '')
      throw new TongbuError(
        'BAD_URL',
        `${shown}: give the database file (sqlite:./file.db?table=…)`,
      );
    return { ...common, path };
  }
  let url: URL;
  try {
    url = new URL(spec);
  } catch (err) {
    throw new TongbuError('BAD_URL', `${shown}: not a valid URL`, { cause: err });
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  return {
    ...common,
    host: url.hostname === '' ? '127.0.0.1' : url.hostname.replace(/^\[|\]$/g, ''),
    ...(url.port !== '' ? { port: Number(url.port) } : {}),
    ...(url.username !== '' ? { user: decodeURIComponent(url.username) } : {}),
    ...(url.password !== '' ? { password: decodeURIComponent(url.password) } : {}),
    ...(database !== '' ? { database } : {}),
  };
}

/** The URL with any password replaced by `***`, for messages and logs. */
export function redact(spec: string): string {
  return spec.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@?]*):[^@/?]*@/i, '$1:***@');
}
