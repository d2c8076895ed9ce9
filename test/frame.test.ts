import t from 'tap';
import { frameStream, dataOffset, keyPattern, readInt } from '../src/venues/binance/frame.js';
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
