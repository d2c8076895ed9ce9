import { createHash } from 'node:crypto';
import type { FrameKeys, StreamType } from '../../venues/types.js';

/**
 * The `Nats-Msg-Id` of a message: the exchange's own identity of it, so two collectors receiving
 * the same message publish the same id and JetStream keeps it once (docs/scale-out.md, "Msg-Id").
 *
 * - Streams with exchange sequence IDs (rule `contiguous`, `range`, `linked`: trade `t`, aggTrade
 *   `a`, depth `U/u`, OKX `tradeId` / `seqId`): `<venue>:<stream>:<key>`, the key being the last
 *   ID of the message (`first-last` when one message covers several IDs).
 * - The rest (`ordered`: bookTicker `u`, event times, keys shared by several messages, sequences
 *   that restart; `none`): `<venue>:<stream>:#<digest>`, a SHA-256 of the exchange's frame bytes
 *   (the receive time is not in it), which two collectors see byte for byte the same.
 */
export type IdKind = 'key' | 'digest';

export function idKind(type: StreamType): IdKind {
  const k = type.sequence.kind;
  return k === 'contiguous' || k === 'range' || k === 'linked' ? 'key' : 'digest';
}

/** Scratch keys for the sink: one object for every message. */
export function scratchKeys(): FrameKeys {
  return { from: 0, first: NaN, last: NaN, prev: NaN, time: NaN, flags: 0 };
}

/** The Msg-Id from the keys the router read (`prefix` is `<venue>:<stream>:`). */
export function keyId(prefix: string, k: FrameKeys): string {
  return k.first === k.first && k.first !== k.last ? `${prefix}${k.first}-${k.last}` : `${prefix}${k.last}`;
}

export function digestId(prefix: string, frame: Buffer): string {
  return `${prefix}#${createHash('sha256').update(frame).digest('base64url').slice(0, 32)}`;
}

/** A ledger entry's Msg-Id: two collectors may write the same entry id in the same millisecond. */
export function gapId(collector: string, entryId: string, closed: boolean): string {
  return `${collector}:gap:${entryId}:${closed ? 'closed' : 'open'}`;
}
