import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import t from 'tap';
import { recordingPath } from '../src/recorder/files.js';
import { checkRun } from '../src/rehearse/check.js';
import { formatInvariant } from '../src/rehearse/invariant.js';
import { startStack, until } from './helpers/stack.js';

// The recorder cannot write (the hour's file is a symlink to /dev/full: every write fails with
// ENOSPC) and its buffer is small: it keeps what it accepted and refuses the rest. Each refused
// message must be in a `recorder_dropped` gap, and the messages it kept must reach the file once
// the disk works again: the invariant, with the recorder as the fault.

t.test('a full disk: recorder_dropped gaps with exact ranges, then recording resumes', { skip: !existsSync('/dev/full') && 'no /dev/full' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'feedkeeper-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const recDir = join(dir, 'rec');
  // This hour's file and the next (in case the hour turns during the test).
  const now = Date.now();
  const links = [now, now + 3_600_000].map((ms) => recordingPath(recDir, 'binance-spot', ms));
  for (const l of links) {
    mkdirSync(dirname(l), { recursive: true });
    symlinkSync('/dev/full', l);
  }
  const s = await startStack(t, {
    dir,
    sim: { eventsPerSecond: 50, tickMs: 20 },
    config: { symbols: ['BTCUSDT'], streams: ['trade', 'aggTrade', 'depth@100ms', 'bookTicker'], recorder: { maxBufferBytes: 8192 } },
  });
  const names = [...s.daemon.router.names];
  t.ok(await until(() => names.every((n) => s.daemon.router.stream(n)!.gapOpen), 5000, 10), 'every stream has an open gap once the buffer is full');
  t.ok(s.daemon.recorder.stats.dropped > 0, `the recorder refused ${s.daemon.recorder.stats.dropped} messages`);
  t.ok(s.daemon.recorder.stats.writeErrors > 0, 'its writes failed');
  for (const l of links) unlinkSync(l); // the disk is back: the next retry creates a real file
  t.ok(await until(() => names.every((n) => !s.daemon.router.stream(n)!.gapOpen), 10_000), 'every gap closes once the recorder takes messages again');
  const received = names.map((n) => s.daemon.router.stream(n)!.received);
  t.ok(await until(() => names.every((n, i) => s.daemon.router.stream(n)!.received > received[i]! + 10), 5000), 'and recording goes on');

  await s.daemon.stop('test');
  const run = await checkRun(s.config, s.sim);
  t.ok(run.invariant.ok, formatInvariant(run.invariant));
  const gaps = run.entries.filter((g) => g.cause !== 'shutdown');
  t.same(gaps.map((g) => g.stream).sort(), [...names].sort(), 'one gap per stream');
  t.ok(gaps.every((g) => g.cause === 'recorder_dropped' && g.end !== null), 'cause recorder_dropped, closed');
  const trade = gaps.find((g) => g.stream === 'btcusdt@trade')!;
  t.ok(trade.missed !== null && trade.missed.count! > 0, `trade: ${trade.missed?.count} messages dropped, by ID`);
  t.equal(gaps.find((g) => g.stream === 'btcusdt@bookTicker')!.missed, null, 'bookTicker: no range');
  t.ok(run.invariant.streams.every((st) => st.recorded > 0 && st.missed > 0), 'each sequenced stream has recorded and dropped events');
});
