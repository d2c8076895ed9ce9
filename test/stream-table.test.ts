import t from 'tap';
import { StreamTable } from '../src/pipeline/stream-table.js';

// The router's byte-keyed table must answer exactly as a Map keyed by name would, through growth,
// replacement and removal, for names found anywhere inside a larger buffer.
t.test('answers as a Map would, through growth, replacement and removal', (t) => {
  const table = new StreamTable<number>();
  const map = new Map<string, number>();
  let seed = 7;
  const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  const name = (): string => `${['btc', 'eth', 'sol', 'x'][rand(4)]}${rand(300)}usdt@${['trade', 'aggTrade', 'depth@100ms', 'bookTicker'][rand(4)]}`;
  let mismatches = 0;
  let hits = 0;
  for (let step = 0; step < 5000; step++) {
    const op = rand(10);
    const n = name();
    if (op < 5) {
      table.set(n, step);
      map.set(n, step);
    } else if (op < 7) {
      table.delete(n);
      map.delete(n);
    }
    const probe = rand(2) === 0 && map.size > 0 ? [...map.keys()][rand(map.size)]! : name();
    const frame = Buffer.from(`{"stream":"${probe}","data":{}}`, 'latin1');
    const got = table.get(frame, 11, 11 + probe.length);
    if (got !== map.get(probe)) mismatches++;
    if (got !== undefined) hits++;
  }
  t.equal(mismatches, 0);
  t.equal(table.size, map.size);
  t.ok(hits > 1000, `hits ${hits}`);
  t.end();
});

t.test('a prefix or an extension of a name is not the name', (t) => {
  const table = new StreamTable<string>();
  table.set('btcusdt@trade', 'a');
  const buf = Buffer.from('btcusdt@tradex');
  t.equal(table.get(buf, 0, 13), 'a');
  t.equal(table.get(buf, 0, 12), undefined);
  t.equal(table.get(buf, 0, 14), undefined);
  t.equal(table.get(buf, 1, 13), undefined);
  t.end();
});
