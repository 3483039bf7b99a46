/**
 * What a database endpoint's errors may name: host, port, user, database
 * and the redacted URL — never the password. Shared by the PostgreSQL and
 * MySQL endpoints, with the socket error codes that mean "cannot reach".
 */
export interface ConnectionContext {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  /** The redacted URL, for messages. */
  readonly display: string;
}

/** Socket error codes that mean the server cannot be reached (CONNECTION_FAILED). */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);
