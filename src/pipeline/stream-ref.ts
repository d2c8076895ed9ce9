import type { Venue } from '../venues/types.js';

/**
 * How a stream's frames become recording lines, prepared once per stream: the line is
 * `{"recv":<ms>` + head + frame[start..] + (close ? `}` : ``) + `\n`. Binance's combined envelope
 * keeps its bytes (head `,"venue":"binance-spot",`, start 1); another venue's frame goes whole under
 * `data` (head `,"venue":"okx","stream":"trades:BTC-USDT","data":`, start 0, close).
 */
export interface StreamRef {
  readonly venue: string;
  /** The canonical stream id. */
  readonly name: string;
  readonly head: Buffer;
  readonly start: number;
  readonly close: boolean;
}


export function streamRef(venue: Pick<Venue, 'name' | 'recordingShape'>, name: string): StreamRef {
  return venue.recordingShape === 'envelope'
    ? { venue: venue.name, name, head: Buffer.from(`,"venue":${JSON.stringify(venue.name)},`), start: 1, close: false }
    : { venue: venue.name, name, head: Buffer.from(`,"venue":${JSON.stringify(venue.name)},"stream":${JSON.stringify(name)},"data":`), start: 0, close: true };
}
