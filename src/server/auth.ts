/**
 * Bearer tokens with scopes. A token is `tbu_<id>_<secret>`; the catalog
 * keeps only the sha256 of the whole string. A scope is `PATTERN:LEVEL`:
 * PATTERN globs namespace names (`llama/*` and `llama` both mean the
 * namespace llama, `*` every namespace), LEVEL is read, write or admin, each
 * including the ones before it.
 */
import { createHash, randomBytes } from 'node:crypto';
import picomatch from 'picomatch';
import { TongbuError } from '../core/errors.js';
import type { Catalog, TokenRecord } from '../store/catalog.js';

export type AccessLevel = 'read' | 'write' | 'admin';

const LEVELS: Record<AccessLevel, number> = { read: 1, write: 2, admin: 3 };
const TOKEN_PATTERN = /^tbu_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/;

export interface Scope {
  readonly pattern: string;
  readonly level: AccessLevel;
  readonly matches: (namespace: string) => boolean;
}

export function parseScope(text: string): Scope {
  const colon = text.lastIndexOf(':');
  const pattern = text.slice(0, colon);
  const level = text.slice(colon + 1);
  if (colon <= 0 || !(level in LEVELS) || /\s/.test(pattern)) {
    throw new TongbuError(
      'BAD_ARGUMENT',
      `invalid scope ${JSON.stringify(text)}: expected PATTERN:read|write|admin, e.g. 'llama/*:write'`,
    );
  }
  const nsGlob = pattern.replace(/\/\*{1,2}$/, '');
  const isMatch = picomatch(nsGlob, { dot: true });
  return { pattern, level: level as AccessLevel, matches: (ns) => isMatch(ns) };
}

export function hashSecret(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export interface Principal {
  readonly token: TokenRecord;
  readonly scopes: readonly Scope[];
}

/** Grants `need` on a namespace, or on any namespace when `namespace` is undefined. */
export function allows(p: Principal, need: AccessLevel, namespace?: string): boolean {
  return p.scopes.some(
    (s) => LEVELS[s.level] >= LEVELS[need] && (namespace === undefined || s.matches(namespace)),
  );
}

export function requireAccess(p: Principal, need: AccessLevel, namespace?: string): void {
  if (allows(p, need, namespace)) return;
  const where = namespace === undefined ? 'any namespace' : `namespace ${namespace}`;
  throw new TongbuError(
    'PERMISSION_DENIED',
    `token ${p.token.id} has no ${need} access to ${where}`,
    {
      data: { token: p.token.id, need, ...(namespace !== undefined ? { namespace } : {}) },
    },
  );
}

/** Mints a token with the given scopes; returns the secret string, shown once. */
export async function createToken(
  catalog: Catalog,
  scopes: readonly string[],
  label = '',
): Promise<{ token: string; record: TokenRecord }> {
  if (scopes.length === 0)
    throw new TongbuError('BAD_ARGUMENT', 'a token needs at least one --scope');
  for (const s of scopes) parseScope(s);
  const id = randomBytes(9)
    .toString('base64url')
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '0')
    .slice(0, 12);
  const token = `tbu_${id}_${randomBytes(32).toString('base64url')}`;
  const record: TokenRecord = {
    id,
    secretHash: hashSecret(token),
    scopes: [...scopes],
    label,
    createdMs: Date.now(),
  };
  await catalog.putToken(record);
  return { token, record };
}

/** The principal of an `Authorization` header; UNAUTHORIZED when missing or unknown. */
export async function authenticate(
  catalog: Catalog,
  header: string | undefined,
): Promise<Principal> {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) {
    throw new TongbuError(
      'UNAUTHORIZED',
      'missing bearer token (set TONGBU_TOKEN or --token-file)',
    );
  }
  const secret = m[1]!;
  const record = TOKEN_PATTERN.test(secret)
    ? await catalog.findToken(hashSecret(secret))
    : undefined;
  if (!record) throw new TongbuError('UNAUTHORIZED', 'unknown or revoked token');
  return { token: record, scopes: record.scopes.map(parseScope) };
}
