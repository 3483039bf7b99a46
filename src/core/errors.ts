/**
 * The one error type of tongbu. Every failure a user can see carries a code
 * from {@link ErrorCode}; the CLI exit code and the HTTP status derive from it
 * through {@link ERROR_TABLE}, and retries read `retryable`, nothing else.
 */

export const ERROR_TABLE = {
  BAD_ARGUMENT: { exit: 2, http: 400, retryable: false },
  BAD_KEY: { exit: 2, http: 400, retryable: false },
  BAD_URL: { exit: 2, http: 400, retryable: false },
  KEY_NOT_UTF8: { exit: 3, http: 400, retryable: false },
  SOURCE_NOT_FOUND: { exit: 3, http: 404, retryable: false },
  NOT_FOUND: { exit: 3, http: 404, retryable: false },
  NOT_A_DIRECTORY: { exit: 3, http: 400, retryable: false },
  DEST_INSIDE_SOURCE: { exit: 2, http: 400, retryable: false },
  SOURCE_INSIDE_DEST: { exit: 2, http: 400, retryable: false },
  BLOCKED: { exit: 9, http: 409, retryable: false },
  PERMISSION_DENIED: { exit: 4, http: 403, retryable: false },
  UNAUTHORIZED: { exit: 4, http: 401, retryable: false },
  CONFLICT: { exit: 10, http: 409, retryable: false },
  TOO_LARGE: { exit: 2, http: 413, retryable: false },
  UNAVAILABLE: { exit: 8, http: 503, retryable: true },
  NO_SPACE: { exit: 5, http: 507, retryable: false },
  FILE_CHANGED: { exit: 6, http: 409, retryable: true },
  HASH_MISMATCH: { exit: 6, http: 422, retryable: true },
  MASS_DELETE: { exit: 7, http: 409, retryable: false },
  NAME_COLLISION: { exit: 3, http: 409, retryable: false },
  IO: { exit: 8, http: 500, retryable: true },
  ABORTED: { exit: 130, http: 499, retryable: false },
  DIFFERENT: { exit: 1, http: 409, retryable: false },
  PARTIAL: { exit: 9, http: 500, retryable: false },
  SCHEMA_MISMATCH: { exit: 3, http: 409, retryable: false },
  CONNECTION_FAILED: { exit: 8, http: 503, retryable: true },
  INTERNAL: { exit: 70, http: 500, retryable: false },
} as const satisfies Record<string, { exit: number; http: number; retryable: boolean }>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export interface TongbuErrorJSON {
  code: ErrorCode;
  message: string;
  data?: Record<string, unknown>;
  retryable: boolean;
}

export class TongbuError extends Error {
  readonly code: ErrorCode;
  readonly data: Record<string, unknown>;
  readonly retryable: boolean;

  constructor(
    code: ErrorCode,
    message: string,
    options: { data?: Record<string, unknown>; cause?: unknown; retryable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TongbuError';
    this.code = code;
    this.data = options.data ?? {};
    this.retryable = options.retryable ?? ERROR_TABLE[code].retryable;
  }

  get exitCode(): number {
    return ERROR_TABLE[this.code].exit;
  }

  get httpStatus(): number {
    return ERROR_TABLE[this.code].http;
  }

  toJSON(): TongbuErrorJSON {
    return { code: this.code, message: this.message, data: this.data, retryable: this.retryable };
  }

  static fromJSON(json: TongbuErrorJSON): TongbuError {
    const code: ErrorCode = json.code in ERROR_TABLE ? json.code : 'INTERNAL';
    return new TongbuError(code, json.message, {
      ...(json.data ? { data: json.data } : {}),
      retryable: json.retryable,
    });
  }
}

const ERRNO_CODES: Record<string, ErrorCode> = {
  ENOENT: 'NOT_FOUND',
  ENOTDIR: 'NOT_A_DIRECTORY',
  EACCES: 'PERMISSION_DENIED',
  EPERM: 'PERMISSION_DENIED',
  ENOSPC: 'NO_SPACE',
  EDQUOT: 'NO_SPACE',
  EFBIG: 'NO_SPACE',
  EIO: 'IO',
  EAGAIN: 'IO',
  EBUSY: 'IO',
  EMFILE: 'IO',
  ENFILE: 'IO',
};

const ERRNO_WORDS: Partial<Record<ErrorCode, string>> = {
  NOT_FOUND: 'no such file or directory',
  NOT_A_DIRECTORY: 'a path component is not a directory',
  PERMISSION_DENIED: 'permission denied',
  NO_SPACE: 'no space left on device',
};

/** Turns a Node system error into a TongbuError that names the path. */
export function fromSystemError(err: unknown, path: string, action: string): TongbuError {
  if (err instanceof TongbuError) return err;
  const errno = (err as NodeJS.ErrnoException | undefined)?.code ?? '';
  const code = ERRNO_CODES[errno] ?? 'IO';
  const words = ERRNO_WORDS[code] ?? (err instanceof Error ? err.message : String(err));
  return new TongbuError(code, `${action} ${path}: ${words}${errno ? ` (${errno})` : ''}`, {
    data: { path, errno },
    cause: err,
  });
}

export function isTongbuError(err: unknown, code?: ErrorCode): err is TongbuError {
  return err instanceof TongbuError && (code === undefined || err.code === code);
}

export function toTongbuError(err: unknown): TongbuError {
  if (err instanceof TongbuError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new TongbuError('INTERNAL', message, { cause: err });
}

/** The path or key an error names, or '' when it names none. */
export function errorSubject(err: TongbuError): string {
  const subject = err.data['path'] ?? err.data['key'];
  return typeof subject === 'string' ? subject : '';
}
