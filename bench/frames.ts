/**
 * Pre-encoded Binance combined-stream frames for the flood source. Each stream gets one template,
 * built once with JSON text, and every frame afterwards is a byte copy of it with only the sequence
 * IDs and the timestamps overwritten in place: no JSON.stringify, no string per frame.
 *
 * Numbers are fixed-width so that a patch never moves bytes: IDs have 12 digits (they start at
 * 10^11, as Binance's own do for liquid symbols), times 16 digits: microseconds since the epoch,
 * as Binance sends them with `timeUnit=MICROSECOND`. The event time `E` holds the moment the frame
 * was built, on the clock `performance.timeOrigin + performance.now()`, so a consumer in another
 * process can compute the delivery latency (src/venues/binance-frame.ts reads `E` as a number and
 * does not care about its unit).
 *
 * Payload shapes are spot's, key for key, as recorded in test/fixtures/binance/spot-stream.ndjson
 * (trade: facts sheet and src/simulator/payloads.ts). Spot bookTicker has no `E`: its frames carry
 * no send time and are left out of latency samples.
 */

/** Stream types the flood source can send. */
export const BENCH_STREAM_TYPES = ['trade', 'aggTrade', 'depth@100ms', 'bookTicker'] as const;
export type BenchStreamType = (typeof BENCH_STREAM_TYPES)[number];

const ID_WIDTH = 12;
const ID_BASE = 100_000_000_000;
const TIME_WIDTH = 16;

export interface StreamTemplate {
  readonly name: string;
  readonly bytes: Buffer;
  /** Offsets of the 12-digit ID fields and what each holds: seq + delta. */
  readonly idOffsets: readonly number[];
  readonly idDeltas: readonly number[];
  /** Offsets of the 16-digit µs time fields (E, and T where the payload has it). */
  readonly timeOffsets: readonly number[];
  /** Added to seq after each frame (depth covers U..u, bookTicker's u jumps). */
  readonly step: number;
  /** The next frame's base ID. */
  seq: number;
}

/** `performance.timeOrigin + performance.now()` in µs: the clock the source stamps and consumers read. */
export function nowMicros(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

/** `s00042usdt`: the i-th bench symbol (upper case in the config, lower case on the wire). */
export function benchSymbol(i: number): string {
  return `S${String(i).padStart(5, '0')}USDT`;
}

/** Symbols × BENCH_STREAM_TYPES makes `streams` streams (a multiple of 4). */
export function benchSymbols(streams: number): string[] {
  const n = Math.ceil(streams / BENCH_STREAM_TYPES.length);
  return Array.from({ length: n }, (_, i) => benchSymbol(i + 1));
}

class Builder {
  private text = '';
  readonly idOffsets: number[] = [];
  readonly idDeltas: number[] = [];
  readonly timeOffsets: number[] = [];
  lit(s: string): this {
    this.text += s;
    return this;
  }
  id(delta = 0): this {
    this.idOffsets.push(this.text.length);
    this.idDeltas.push(delta);
    this.text += '1'.padEnd(ID_WIDTH, '0');
    return this;
  }
  time(): this {
    this.timeOffsets.push(this.text.length);
    this.text += '1'.padEnd(TIME_WIDTH, '0');
    return this;
  }
  done(name: string, step: number): StreamTemplate {
    const bytes = Buffer.from(this.text, 'latin1');
    return { name, bytes, idOffsets: this.idOffsets, idDeltas: this.idDeltas, timeOffsets: this.timeOffsets, step, seq: ID_BASE };
  }
}

/** The template of stream `name` (`s00001usdt@trade`), or null for a type the source does not send. */
export function streamTemplate(name: string): StreamTemplate | null {
  const at = name.indexOf('@');
  if (at < 1) return null;
  const sym = name.slice(0, at).toUpperCase();
  const type = name.slice(at + 1);
  const b = new Builder().lit(`{"stream":"${name}","data":`);
  switch (type) {
    case 'trade':
      b.lit('{"e":"trade","E":').time().lit(`,"s":"${sym}","t":`).id();
      b.lit(',"p":"0.35280000","q":"58.00000000","T":').time().lit(',"m":false,"M":true}}');
      return b.done(name, 1);
    case 'aggTrade':
      b.lit('{"e":"aggTrade","E":').time().lit(`,"s":"${sym}","a":`).id();
      b.lit(',"p":"0.35280000","q":"58.00000000","f":').id().lit(',"l":').id().lit(',"T":').time().lit(',"m":false,"M":true}}');
      return b.done(name, 1);
    case 'depth':
    case 'depth@100ms':
    case 'depth@1000ms':
      // Spot diff depth: the next U is the previous u + 1; each event here covers three updates.
      b.lit('{"e":"depthUpdate","E":').time().lit(`,"s":"${sym}","U":`).id(0).lit(',"u":').id(2);
      b.lit(',"b":[["0.35130000","6195.00000000"],["0.34750000","5548.00000000"],["0.34640000","6222.00000000"]],"a":[["0.35290000","10968.00000000"]]}}');
      return b.done(name, 3);
    case 'bookTicker':
      // u is the book update ID: it jumps between bookTicker events (other book updates in between).
      b.lit('{"u":').id().lit(`,"s":"${sym}","b":"0.35210000","B":"672.00000000","a":"0.35260000","A":"3199.00000000"}}`);
      return b.done(name, 5);
    default:
      return null;
  }
}

/**
 * Writes the next frame of `t` into `out` at `pos` (room for t.bytes.length bytes needed) and
 * returns the position after it.
 */
export function writeFrame(out: Buffer, pos: number, t: StreamTemplate, timeMicros: number): number {
  out.set(t.bytes, pos);
  const seq = t.seq;
  t.seq = seq + t.step;
  const ids = t.idOffsets;
  for (let i = 0; i < ids.length; i++) writeDigits(out, pos + ids[i]!, seq + t.idDeltas[i]!, ID_WIDTH);
  const times = t.timeOffsets;
  const us = Math.floor(timeMicros);
  for (let i = 0; i < times.length; i++) writeDigits(out, pos + times[i]!, us, TIME_WIDTH);
  return pos + t.bytes.length;
}

/** `value` (an integer below 10^16) as exactly `width` decimal digits ending at pos + width. */
function writeDigits(out: Buffer, pos: number, value: number, width: number): void {
  let p = pos + width;
  // Low 8 digits and the rest separately, so that every division is on a 32-bit integer.
  const high = Math.floor(value / 1e8);
  let low = (value - high * 1e8) | 0;
  for (let i = 0; i < 8; i++) {
    const q = (low / 10) | 0;
    out[--p] = 0x30 + low - q * 10;
    low = q;
  }
  let h = high | 0;
  while (p > pos) {
    const q = (h / 10) | 0;
    out[--p] = 0x30 + h - q * 10;
    h = q;
  }
}
