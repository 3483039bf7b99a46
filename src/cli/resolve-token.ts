/** The bearer token for tongbu:// endpoints: from --token-file, else --token (or its variable). */
import { readFileSync } from 'node:fs';
import { TongbuError } from '../core/errors.js';

export function resolveToken(options: {
  token?: string | undefined;
  tokenFile?: string | undefined;
}): string | undefined {
  if (options.tokenFile !== undefined) {
    try {
      return readFileSync(options.tokenFile, 'utf8').trim();
    } catch (err) {
      throw new TongbuError(
        'BAD_ARGUMENT',
        `--token-file ${options.tokenFile}: ${(err as Error).message}`,
      );
    }
  }
  return options.token;
}
