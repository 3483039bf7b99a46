/**
 * `tongbu serve --data DIR --listen HOST:PORT`: runs a store node until
 * SIGINT/SIGTERM. Binding anything but loopback without TLS needs
 * --insecure; the first start writes an admin token to DIR/admin.token.
 */
import { isIP } from 'node:net';
import { z } from 'zod/v3';
import { TongbuError } from '../core/errors.js';
import { openNodeData } from '../server/node-data.js';
import { readTls, StoreServer } from '../server/store-server.js';
import { flagsOf, helpFor, parseCommandLine } from './args.js';
import { parseOptions } from './parse-options.js';

export const serveOptionsSchema = z.object({
  data: z.string().describe('data directory of the node (created when absent)'),
  listen: z.string().default('127.0.0.1:7700').describe('HOST:PORT to listen on'),
  tlsCert: z.string().optional().describe('TLS certificate (PEM); serve HTTPS'),
  tlsKey: z.string().optional().describe('TLS private key (PEM)'),
  insecure: z.boolean().default(false).describe('allow plain HTTP on a non-loopback address'),
});

export const SERVE_USAGE = `usage: tongbu serve --data DIR [--listen HOST:PORT] [options]

${helpFor(flagsOf(serveOptionsSchema))}
`;

export function splitHostPort(text: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:]+):(\d{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  if (!m || port > 65535) {
    throw new TongbuError(
      'BAD_ARGUMENT',
      `--listen: expected HOST:PORT, got ${JSON.stringify(text)}`,
    );
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

export async function serveCommand(argv: readonly string[], version: string): Promise<number> {
  const line = parseCommandLine(argv, flagsOf(serveOptionsSchema), {
    help: { type: 'boolean', short: 'h' },
  });
  if (line.cli['help'] === true) {
    process.stdout.write(SERVE_USAGE);
    return 0;
  }
  const options = parseOptions(serveOptionsSchema, line.options);
  const { host, port } = splitHostPort(options.listen);
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) {
    throw new TongbuError('BAD_ARGUMENT', 'TLS needs both --tls-cert and --tls-key');
  }
  const tls =
    options.tlsCert && options.tlsKey ? readTls(options.tlsCert, options.tlsKey) : undefined;
  if (!tls && !isLoopback(host) && !options.insecure) {
    throw new TongbuError(
      'BAD_ARGUMENT',
      `refusing plain HTTP on ${host}: give --tls-cert and --tls-key, or --insecure`,
    );
  }
  const data = await openNodeData(options.data, { bootstrap: true });
  if (data.adminTokenFile) {
    process.stderr.write(`tongbu: admin token written to ${data.adminTokenFile} (mode 0600)\n`);
  }
  const server = new StoreServer({
    store: data.store,
    dataDir: data.dir,
    host,
    port,
    version,
    ...(tls ? { tls } : {}),
  });
  const address = await server.start();
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  process.stderr.write(
    `tongbu: listening on ${tls ? 'https' : 'http'}://${shown}:${address.port} (data ${data.dir})\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.stop();
  return 0;
}
