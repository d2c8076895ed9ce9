/**
 * The messages between the main thread and a read thread (read-thread.ts, threaded-socket.ts).
 * One read thread carries many sockets; every message names its socket by `id`.
 *
 * Messages of a socket travel in batches: the payloads of one or more socket reads, copied one after the
 * other into one ArrayBuffer (moved, not copied, to the main thread), with the end of each.
 */

/** Batches a socket may have on the way to the main thread before its thread stops reading it. */
export const MAX_BATCHES_IN_FLIGHT = 8;

/** Main thread → read thread. */
export type ToReader =
  | { t: 'open'; id: number; url: string; handshakeTimeoutMs: number; maxPayload: number; ca?: string }
  | { t: 'text'; id: number; text: string }
  | { t: 'ping'; id: number; data: Uint8Array }
  | { t: 'pong'; id: number; data: Uint8Array }
  | { t: 'close'; id: number; code: number; reason: string }
  | { t: 'terminate'; id: number }
  /** The main thread has handed on `n` more batches of this socket. */
  | { t: 'ack'; id: number; n: number };

/** Read thread → main thread, in the order the socket produced them. */
export type FromReader =
  | { t: 'open'; id: number }
  | { t: 'response'; id: number; status: number; headers: Record<string, string | string[] | undefined> }
  | { t: 'error'; id: number; message: string; code: string | null }
  | { t: 'close'; id: number; code: number; reason: Uint8Array }
  | { t: 'ping'; id: number; data: Uint8Array }
  | { t: 'pong'; id: number; data: Uint8Array }
  /**
   * Messages: message i is bytes [ends[i-1], ends[i]) of `buf` (ends[-1] = 0); `binary` lists the
   * indexes of binary messages (null: all text, as every venue sends).
   */
  | { t: 'batch'; id: number; buf: ArrayBuffer; ends: Int32Array; binary: number[] | null };

/** A Uint8Array that crossed the thread boundary, as a Buffer over the same memory. */
export function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
