/**
 * Hybrid logical clock (Kulkarni, Demirbas et al., "Logical Physical Clocks",
 * OPODIS 2014). A timestamp is the largest physical time seen (wallMs) plus a
 * logical counter that orders events within the same millisecond; it never
 * runs backwards, stays close to physical time, and respects causality: a
 * timestamp taken after update(remote) is greater than remote.
 *
 * Ties between nodes break on the node id, so compareHlc is a total order and
 * last-writer-wins picks the same winner everywhere. formatHlc writes a
 * fixed-width string that sorts, as plain strings, in compareHlc order.
 */
import { TongbuError } from './errors.js';

export interface HlcTimestamp {
  /** Milliseconds since the Unix epoch: the largest physical time seen. */
  wallMs: number;
  /** Orders events with the same wallMs; 0 to MAX_LOGICAL. */
  logical: number;
  /** The node that issued the timestamp; printable ASCII, no spaces. */
  node: string;
}

export interface HybridClockOptions {
  /** Physical clock in ms since the epoch; Date.now by default. */
  physicalClock?: () => number;
  /** update() refuses a remote more than this far ahead of our physical clock. */
  maxDriftMs?: number;
  /** The last timestamp issued before a restart; the clock continues after it. */
  last?: HlcTimestamp;
}

export const DEFAULT_MAX_DRIFT_MS = 60_000;
/** The largest wallMs that fits 13 decimal digits (year 2286). */
export const MAX_WALL_MS = 9_999_999_999_999;
/** The largest logical counter that fits 6 hex digits. */
export const MAX_LOGICAL = 0xffffff;

const WALL_DIGITS = 13;
const LOGICAL_DIGITS = 6;
const NODE_PATTERN = /^[\x21-\x7e]{1,128}$/;
const HLC_PATTERN = /^(\d{13})-([0-9a-f]{6})-([\x21-\x7e]{1,128})$/;

/** Checks a node id: 1–128 printable ASCII characters without spaces. */
export function validateNodeId(node: string): string {
  if (!NODE_PATTERN.test(node)) {
    throw new TongbuError(
      'BAD_ARGUMENT',
      `invalid HLC node id ${JSON.stringify(node)}: must be 1-128 printable ASCII characters without spaces`,
      { data: { node } },
    );
  }
  return node;
}

/** Throws BAD_ARGUMENT unless `ts` is a well-formed timestamp. */
export function validateHlc(ts: HlcTimestamp): HlcTimestamp {
  const { wallMs, logical, node } = ts;
  if (!Number.isSafeInteger(wallMs) || wallMs < 0 || wallMs > MAX_WALL_MS) {
    throw new TongbuError('BAD_ARGUMENT', `invalid HLC wallMs ${String(wallMs)}`, {
      data: { wallMs },
    });
  }
  if (!Number.isSafeInteger(logical) || logical < 0 || logical > MAX_LOGICAL) {
    throw new TongbuError('BAD_ARGUMENT', `invalid HLC logical counter ${String(logical)}`, {
      data: { logical },
    });
  }
  validateNodeId(node);
  return ts;
}

/** Total order: wallMs, then logical, then node id (by code unit). */
export function compareHlc(a: HlcTimestamp, b: HlcTimestamp): number {
  if (a.wallMs !== b.wallMs) return a.wallMs < b.wallMs ? -1 : 1;
  if (a.logical !== b.logical) return a.logical < b.logical ? -1 : 1;
  if (a.node === b.node) return 0;
  return a.node < b.node ? -1 : 1;
}

/**
 * `<13-digit wallMs>-<6-digit lowercase hex logical>-<node>`, e.g.
 * `1700000000000-00002a-node-1`. The first two fields are fixed width and
 * the node is ASCII, so byte order, UTF-16 order and compareHlc agree.
 */
export function formatHlc(ts: HlcTimestamp): string {
  validateHlc(ts);
  const wall = String(ts.wallMs).padStart(WALL_DIGITS, '0');
  const logical = ts.logical.toString(16).padStart(LOGICAL_DIGITS, '0');
  return `${wall}-${logical}-${ts.node}`;
}

export function parseHlc(text: string): HlcTimestamp {
  const match = HLC_PATTERN.exec(text);
  if (!match) {
    throw new TongbuError('BAD_ARGUMENT', `invalid HLC timestamp ${JSON.stringify(text)}`, {
      data: { text },
    });
  }
  const [, wall = '', logical = '', node = ''] = match;
  return { wallMs: Number(wall), logical: parseInt(logical, 16), node };
}

/**
 * One node's clock. now() stamps a local event (or a send); update(remote)
 * merges a received timestamp and returns a timestamp greater than both.
 * If the logical counter would overflow, wallMs moves one millisecond ahead.
 */
export class HybridClock {
  readonly node: string;
  readonly maxDriftMs: number;
  private readonly physicalClock: () => number;
  private wallMs = 0;
  private logical = 0;

  constructor(node: string, options: HybridClockOptions = {}) {
    this.node = validateNodeId(node);
    this.physicalClock = options.physicalClock ?? Date.now;
    this.maxDriftMs = options.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS;
    if (!Number.isSafeInteger(this.maxDriftMs) || this.maxDriftMs < 0) {
      throw new TongbuError('BAD_ARGUMENT', `invalid maxDriftMs ${String(this.maxDriftMs)}`, {
        data: { maxDriftMs: this.maxDriftMs },
      });
    }
    if (options.last !== undefined) {
      validateHlc(options.last);
      this.wallMs = options.last.wallMs;
      this.logical = options.last.logical;
    }
  }

  /** The last timestamp issued (or restored), without advancing the clock. */
  peek(): HlcTimestamp {
    return { wallMs: this.wallMs, logical: this.logical, node: this.node };
  }

  now(): HlcTimestamp {
    const pt = this.physical();
    if (pt > this.wallMs) {
      this.wallMs = pt;
      this.logical = 0;
    } else {
      this.logical += 1;
    }
    return this.issue();
  }

  /** Receives a remote timestamp; throws BAD_ARGUMENT if it is too far ahead. */
  update(remote: HlcTimestamp): HlcTimestamp {
    validateHlc(remote);
    const pt = this.physical();
    if (remote.wallMs - pt > this.maxDriftMs) {
      throw new TongbuError(
        'BAD_ARGUMENT',
        `HLC timestamp from node ${JSON.stringify(remote.node)} is ${remote.wallMs - pt} ms ahead ` +
          `of the local clock (limit ${this.maxDriftMs} ms); check the clocks of both nodes`,
        { data: { remote: formatHlc(remote), physicalMs: pt, maxDriftMs: this.maxDriftMs } },
      );
    }
    const wall = Math.max(this.wallMs, remote.wallMs, pt);
    if (wall === this.wallMs && wall === remote.wallMs) {
      this.logical = Math.max(this.logical, remote.logical) + 1;
    } else if (wall === this.wallMs) {
      this.logical += 1;
    } else if (wall === remote.wallMs) {
      this.logical = remote.logical + 1;
    } else {
      this.logical = 0;
    }
    this.wallMs = wall;
    return this.issue();
  }

  private physical(): number {
    const pt = Math.floor(this.physicalClock());
    if (!Number.isSafeInteger(pt) || pt < 0 || pt > MAX_WALL_MS) {
      throw new TongbuError('INTERNAL', `physical clock returned ${String(pt)}`, {
        data: { physicalMs: pt },
      });
    }
    return pt;
  }

  private issue(): HlcTimestamp {
    if (this.logical > MAX_LOGICAL) {
      this.wallMs += 1;
      this.logical = 0;
    }
    if (this.wallMs > MAX_WALL_MS) {
      throw new TongbuError('INTERNAL', `HLC wallMs overflow (${this.wallMs})`);
    }
    return { wallMs: this.wallMs, logical: this.logical, node: this.node };
  }
}
