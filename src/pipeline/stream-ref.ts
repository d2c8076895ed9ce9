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


/** An envelope venue's head, one Buffer per venue: encodeStreamLine keeps its line prefix per head. */
const envelopeHeads = new Map<string, Buffer>();

export function streamRef(venue: Pick<Venue, 'name' | 'recordingShape'>, name: string): StreamRef {
  if (venue.recordingShape === 'envelope') {
    let head = envelopeHeads.get(venue.name);
    if (head === undefined) envelopeHeads.set(venue.name, (head = Buffer.from(`,"venue":${JSON.stringify(venue.name)},`)));
    return { venue: venue.name, name, head, start: 1, close: false };
  }
  return { venue: venue.name, name, head: Buffer.from(`,"venue":${JSON.stringify(venue.name)},"stream":${JSON.stringify(name)},"data":`), start: 0, close: true };
}
