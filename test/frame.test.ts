import t from 'tap';
import { frameStream, dataOffset, keyPattern, readBinanceStreamSpan, readInt } from '../src/venues/binance/frame.js';
import { hashBytes } from '../src/pipeline/stream-table.js';
import { getVenue } from '../src/venues/index.js';
import { binanceStreamType } from '../src/venues/binance/streams.js';
import { keyScan, scanKeys } from '../src/venues/bytes.js';
import { fixtureFrames } from './helpers/fixtures.js';

const KEYS = ['t', 'a', 'U', 'u', 'pu', 'E', 'lastUpdateId', 'f', 'l'];

for (const name of ['spot-stream', 'usdm-stream'] as const) {
  t.test(`every real ${name} frame reads like JSON.parse reads it`, async (t) => {
    const frames = fixtureFrames(name);
    t.ok(frames.length > 200, 'fixture loaded');
    let checked = 0;
    for (const { frame } of frames) {
      const buf = Buffer.from(frame);
      const parsed = JSON.parse(frame) as { stream: string; data: Record<string, unknown> };
      const stream = frameStream(buf);
      if (stream !== parsed.stream) t.fail(`stream name of ${frame.slice(0, 80)}`);
      const from = dataOffset(stream!.length);
      for (const k of KEYS) {
        const want = parsed.data[k];
        const got = readInt(buf, keyPattern(k), from);
        // Only top-level integer fields are read this way (kline's nested `t` is not one we read).
        if (typeof want === 'number') {
          if (got !== want) t.fail(`${k} in ${stream}: ${got} != ${want}`);
          checked++;
        }
      }
    }
    t.ok(checked > frames.length, `${checked} fields compared`);
  });
}

t.test('update IDs above 2^32 are exact', async (t) => {
  const buf = Buffer.from('{"stream":"x@depth","data":{"e":"depthUpdate","E":1,"U":600859599090,"u":9007199254740991,"pu":-1}}');
  t.equal(readInt(buf, keyPattern('U'), 0), 600859599090);
  t.equal(readInt(buf, keyPattern('u'), 0), 9007199254740991);
  t.equal(readInt(buf, keyPattern('pu'), 0), -1);
});

t.test('not a combined frame, or a broken one, reads as null / NaN', async (t) => {
  for (const s of ['', '{}', '{"result":null,"id":1}', '{"stream":"abc', '{"stream":"btcusdt@trade"', 'garbage', '{"stream":"btcusdt@trade","dat":{}}']) {
    t.equal(frameStream(Buffer.from(s)), null, JSON.stringify(s));
  }
  t.ok(Number.isNaN(readInt(Buffer.from('{"t":"abc"}'), keyPattern('t'), 0)));
  t.ok(Number.isNaN(readInt(Buffer.from('{"t":'), keyPattern('t'), 0)));
  t.ok(Number.isNaN(readInt(Buffer.from('{"x":1}'), keyPattern('t'), 0)));
});

t.test('fuzz: random bytes and mutated real frames never throw', async (t) => {
  const frames = fixtureFrames('spot-stream').map((f) => Buffer.from(f.frame));
  let seed = 42;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const keys = KEYS.map(keyPattern);
  for (let i = 0; i < 20_000; i++) {
    let buf: Buffer;
    if (i % 2 === 0) {
      buf = Buffer.alloc(Math.floor(rnd() * 300));
      for (let j = 0; j < buf.length; j++) buf[j] = Math.floor(rnd() * 256);
    } else {
      const src = frames[i % frames.length]!;
      buf = Buffer.from(src.subarray(0, Math.floor(rnd() * src.length)));
      for (let j = 0; j < 3 && buf.length > 0; j++) buf[Math.floor(rnd() * buf.length)] = Math.floor(rnd() * 256);
    }
    const s = frameStream(buf);
    for (const k of keys) readInt(buf, k, s === null ? 0 : dataOffset(s.length));
  }
  t.pass('20,000 random and truncated frames read without throwing');
});

t.test('scanKeys reads what readInt of each key reads: real frames, fuzzed frames, key-dense text', async (t) => {
  const sets = [['E'], ['t', 'E'], ['a', 'E'], ['U', 'u', 'E'], ['u', 'E'], ['u'], ['E', 'u', 'U', 't', 'a', 's', 'T', 'b']];
  const scans = sets.map((keys) => ({ keys, scan: keyScan(keys), patterns: keys.map(keyPattern) }));
  const values = new Float64Array(8);
  let seed = 7;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const real = [...fixtureFrames('spot-stream'), ...fixtureFrames('usdm-stream')].map((f) => Buffer.from(f.frame));
  // Text made of the bytes the scan steps on (quotes, colons, key characters, digits, `-`): every
  // near-match and overlap, and keys that repeat (the first one counts).
  const alphabet = Buffer.from('"":::EEuuUtta-0123456789,{}s');
  const cases: Buffer[] = [...real];
  for (let i = 0; i < 20_000; i++) {
    if (i % 2 === 0) {
      const buf = Buffer.alloc(Math.floor(rnd() * 120));
      for (let j = 0; j < buf.length; j++) buf[j] = alphabet[Math.floor(rnd() * alphabet.length)]!;
      cases.push(buf);
    } else {
      const src = real[i % real.length]!;
      const buf = Buffer.from(src.subarray(0, Math.floor(rnd() * (src.length + 1))));
      for (let j = 0; j < 3 && buf.length > 0; j++) buf[Math.floor(rnd() * buf.length)] = alphabet[Math.floor(rnd() * alphabet.length)]!;
      cases.push(buf);
    }
  }
  let compared = 0;
  let found = 0;
  for (const buf of cases) {
    for (const { keys, scan, patterns } of scans) {
      for (const from of [0, 5, 28]) {
        values.fill(-12345);
        scanKeys(buf, from, scan, values);
        for (let k = 0; k < keys.length; k++) {
          const want = readInt(buf, patterns[k]!, from);
          const got = values[k]!;
          if (!Object.is(got, want)) {
            t.fail(`${keys[k]} from ${from} in ${JSON.stringify(buf.toString('latin1'))}: ${got} != ${want}`);
            return;
          }
          compared++;
          if (want === want) found++;
        }
      }
    }
  }
  t.ok(found > 50_000, `${compared} reads compared, ${found} of them found a value`);
  t.throws(() => keyScan([]));
  t.throws(() => keyScan(['pu']));
  t.throws(() => keyScan(['"']));
});

t.test('every Binance key reader reads what per-key readInt reads, on every real frame', async (t) => {
  const types = ['trade', 'aggTrade', 'bookTicker', 'depth@100ms', 'depth', 'depth5', 'depth20@100ms', 'ticker', 'miniTicker', 'kline_1m', 'avgPrice'];
  const real = [...fixtureFrames('spot-stream'), ...fixtureFrames('usdm-stream')].map((f) => Buffer.from(f.frame));
  const E = keyPattern('E');
  let checked = 0;
  for (const linkedBy of ['U', 'pu'] as const) {
    const opts = { depthLinkedBy: linkedBy, depthSpeeds: ['100ms', '1000ms', '250ms', '500ms'], hasAvgPrice: true, has1sKline: true, routes: { book: '/b', market: '/m' } };
    for (const type of types) {
      const st = binanceStreamType(type, opts)!;
      const rule = st.sequence;
      for (const buf of real) {
        const s = frameStream(buf);
        if (s === null) continue;
        const from = dataOffset(s.length);
        const out = { from, first: 0, last: 0, prev: 0, time: 0, flags: 0 };
        const ok = st.keys(buf, out);
        const time = readInt(buf, E, from);
        let first = NaN;
        let last = NaN;
        let prev = NaN;
        let want: boolean;
        if (rule.kind === 'range' || rule.kind === 'linked') {
          first = readInt(buf, keyPattern('U'), from);
          last = readInt(buf, keyPattern('u'), from);
          if (rule.kind === 'linked') prev = readInt(buf, keyPattern('pu'), from);
          want = last === last && first === first;
        } else if (rule.kind === 'none') {
          want = true;
        } else {
          let v = readInt(buf, keyPattern(rule.field), from);
          if (v !== v && rule.field === 'lastUpdateId') v = readInt(buf, keyPattern('u'), from);
          first = last = v;
          want = v === v;
        }
        const same = ok === want && Object.is(out.first, first) && Object.is(out.last, last) && Object.is(out.prev, prev) && Object.is(out.time, time) && out.flags === 0;
        if (!same) {
          t.fail(`${type} (${linkedBy}) on ${s}: ${JSON.stringify(out)} ok=${ok}, want first ${first} last ${last} prev ${prev} time ${time} ok=${want}`);
          return;
        }
        checked++;
      }
    }
  }
  t.ok(checked > 5000, `${checked} frame × type reads compared`);
});

t.test('readBinanceStreamSpan: the span of frameStream, the hash of the table', async (t) => {
  const real = [...fixtureFrames('spot-stream'), ...fixtureFrames('usdm-stream')].map((f) => Buffer.from(f.frame));
  const out = { from: 0, first: 0, last: 0, prev: 0, time: 0, flags: 0 };
  const span = { start: 0, end: 0, hash: -1 };
  let bad = 0;
  for (const buf of real) {
    const name = frameStream(buf);
    const ok = readBinanceStreamSpan(buf, out, span);
    if (ok !== (name !== null)) bad++;
    if (name === null) continue;
    if (buf.toString('latin1', span.start, span.end) !== name || span.hash !== hashBytes(buf, span.start, span.end) || out.from !== dataOffset(name.length)) bad++;
  }
  t.equal(bad, 0, `${real.length} frames`);
  for (const s of ['', '{}', '{"stream":"abc', '{"stream":"btcusdt@trade"', '{"stream":"btcusdt@trade","dat":{}}']) t.equal(readBinanceStreamSpan(Buffer.from(s), out, span), false, JSON.stringify(s));
});

t.test('spot bookTicker: its key reader reads u and no E (a spot bookTicker has none: every real one checked)', async (t) => {
  const spotType = getVenue('binance-spot')!.streamType('bookTicker')!;
  const usdmType = getVenue('binance-usdm')!.streamType('bookTicker')!;
  let spot = 0;
  for (const { frame } of fixtureFrames('spot-stream')) {
    const parsed = JSON.parse(frame) as { stream: string; data: Record<string, unknown> };
    if (!parsed.stream.endsWith('@bookTicker')) continue;
    t.equal(parsed.data.E, undefined, 'no E in a real spot bookTicker');
    const buf = Buffer.from(frame);
    const out = { from: dataOffset(parsed.stream.length), first: 0, last: 0, prev: 0, time: 0, flags: 0 };
    t.equal(spotType.keys(buf, out), true);
    t.equal(out.last, parsed.data.u);
    t.ok(Number.isNaN(out.time));
    spot++;
  }
  t.ok(spot > 10, `${spot} spot bookTicker frames`);
  let usdm = 0;
  for (const { frame } of fixtureFrames('usdm-stream')) {
    const parsed = JSON.parse(frame) as { stream: string; data: Record<string, unknown> };
    if (!parsed.stream.endsWith('@bookTicker')) continue;
    const out = { from: dataOffset(parsed.stream.length), first: 0, last: 0, prev: 0, time: 0, flags: 0 };
    t.equal(usdmType.keys(Buffer.from(frame), out), true);
    t.equal(out.last, parsed.data.u);
    t.equal(out.time, parsed.data.E, 'futures bookTicker: E read');
    usdm++;
  }
  t.ok(usdm > 10, `${usdm} USD-M bookTicker frames`);
});
