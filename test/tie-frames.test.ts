import t from 'tap';
import { TieFrames } from '../src/pipeline/tie-frames.js';

// The router's copies of the frames at a stream's current key (ties): exact bytes, reused slots.

t.test('tie frames: copies compared by their exact bytes; clear forgets; long frames get a larger slot', async (t) => {
  const ties = new TieFrames();
  const scratch = Buffer.from('trade-A');
  ties.add(scratch);
  scratch.write('trade-B');
  t.ok(ties.has(Buffer.from('trade-A')), 'a copy: the source changed after add');
  t.notOk(ties.has(Buffer.from('trade-B')), 'same length, other bytes');
  t.notOk(ties.has(Buffer.from('trade-')), 'a prefix is not the frame');
  t.notOk(ties.has(Buffer.from('trade-AA')), 'nor a longer one');
  const long = Buffer.alloc(5000, 0x61);
  ties.add(long);
  t.ok(ties.has(Buffer.alloc(5000, 0x61)), 'a frame over the 1 KiB slot');
  t.equal(ties.size, 2);
  ties.clear();
  t.equal(ties.size, 0);
  t.notOk(ties.has(Buffer.from('trade-A')), 'cleared');
  for (let i = 0; i < 20; i++) ties.add(Buffer.from(`t${i}`));
  t.ok(ties.has(Buffer.from('t0')) && ties.has(Buffer.from('t19')), 'more ties than the slots kept across keys');
  ties.clear();
  ties.add(Buffer.from('x'));
  t.ok(ties.has(Buffer.from('x')) && !ties.has(Buffer.from('t1')), 'after a clear only the new key\'s frames');
});
