/** Small helpers for node:http handlers: bodies with limits, JSON and error replies. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TongbuError, toTongbuError } from '../core/errors.js';
import { BatchDecoder, type ChunkFrame } from '../endpoints/tongbu/protocol.js';

/** Feeds a request body to `take` piece by piece, refusing more than `limit` bytes. */
async function consumeBody(
  req: IncomingMessage,
  limit: number,
  take: (piece: Buffer) => void,
): Promise<number> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) {
    req.resume();
    throw new TongbuError('TOO_LARGE', `request body of ${declared} bytes exceeds ${limit}`);
  }
  let size = 0;
  for await (const piece of req as AsyncIterable<Buffer>) {
    size += piece.length;
    if (size > limit) throw new TongbuError('TOO_LARGE', `request body exceeds ${limit} bytes`);
    take(piece);
  }
  return size;
}

export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  const size = await consumeBody(req, limit, (piece) => parts.push(piece));
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
}

/** A chunk batch, decoded as it arrives: no buffer of the whole body. */
export async function readBatch(req: IncomingMessage, limit: number): Promise<ChunkFrame[]> {
  const decoder = new BatchDecoder();
  await consumeBody(req, limit, (piece) => decoder.push(piece));
  return decoder.end();
}

export async function readJson(
  req: IncomingMessage,
  limit: number,
): Promise<Record<string, unknown>> {
  const body = await readBody(req, limit);
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new TongbuError('BAD_ARGUMENT', 'request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TongbuError('BAD_ARGUMENT', 'request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

export function sendBytes(
  res: ServerResponse,
  body: Uint8Array,
  type = 'application/octet-stream',
): void {
  res.writeHead(200, { 'content-type': type, 'content-length': body.length });
  res.end(body);
}

/** Sends a binary body given in parts (chunk frames) without joining them. */
export function sendParts(res: ServerResponse, parts: readonly Uint8Array[]): void {
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': parts.reduce((n, p) => n + p.length, 0),
  });
  for (const p of parts) res.write(p);
  res.end();
}

export function sendError(res: ServerResponse, err: unknown): number {
  const e = toTongbuError(err);
  const status = e.httpStatus;
  if (res.headersSent) {
    res.destroy(e);
    return status;
  }
  sendJson(res, status, { error: e.toJSON() });
  return status;
}

export function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new TongbuError('BAD_ARGUMENT', `${field} must be a string`);
  return v;
}
