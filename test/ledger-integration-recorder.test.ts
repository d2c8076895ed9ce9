import { existsSync, mkdirSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import t, { type Test } from 'tap';
import { recordingPath } from '../src/recorder/files.js';
import { checkRun } from '../src/rehearse/check.js';
import { checkInvariant, formatInvariant } from '../src/rehearse/invariant.js';
import { readRecording } from '../src/rehearse/recording.js';
import { startStack, until, type Stack } from './helpers/stack.js';

// The recorder cannot write (the hour's file is a symlink to /dev/full: every write fails with
// ENOSPC) and its buffer is small: it holds the sockets' reads for recorder.holdReadsMs, then keeps
// what it accepted and refuses the rest. Each refused message must be in a `recorder_dropped` gap,
// and the messages it kept must reach the file once the disk works again: the invariant, with the
// recorder as the fault. An outage shorter than the hold loses nothing.

/** One symbol's four streams at 50 events/s with the given recorder settings, once every stream records. */
async function recordingStack(t: Test, recorder: { maxBufferBytes: number; holdReadsMs: number }): Promise<Stack> {
  const s = await startStack(t, {
    sim: { eventsPerSecond: 50, tickMs: 20 },
    config: { symbols: ['BTCUSDT'], streams: ['trade', 'aggTrade', 'depth@100ms', 'bookTicker'], recorder },
  });
  const names = [...s.daemon.router.names];
  t.ok(await until(() => names.every((n) => s.daemon.router.stream(n)!.received > 5), 5000), 'recording');
  return s;
}

/** The invariant over what the daemon recorded (the moved-away file and the live directory) and its ledger. */
async function invariantOf(s: Stack, moved: string) {
  const recording = [...(await readRecording(moved, 'binance-spot')).messages, ...(await readRecording(s.config.recorder.dir, 'binance-spot')).messages];
  const run = await checkRun(s.config, s.sim);
  const invariant = checkInvariant({ venue: 'binance-spot', recording, ledger: run.entries, sent: new Map(run.invariant.streams.map((st) => [st.stream, s.sim.sentIds(st.stream)])) });
  return { run, invariant };
}

/** Points the current hour's file (and the next's) at /dev/full; returns the undo. */
async function fullDisk(s: Stack): Promise<{ moved: string; restore: () => void }> {
  // logrotate moves the file away (to a directory of its own, read back below); in its place, and
  // in the next hour's in case the hour turns, a file on a full disk. SIGHUP's reopen() picks it up.
  // (Not before the start: recovery would read /dev/full's endless zeros.)
  const current = s.daemon.recorder.position().file;
  const moved = join(s.dir, 'moved');
  mkdirSync(join(moved, 'binance-spot', basename(dirname(current))), { recursive: true });
  renameSync(current, join(moved, 'binance-spot', basename(dirname(current)), basename(current)));
  const links = [current, recordingPath(s.config.recorder.dir, 'binance-spot', Date.now() + 3_600_000)];
  for (const l of links) {
    mkdirSync(dirname(l), { recursive: true });
    symlinkSync('/dev/full', l);
  }
  await s.daemon.reopen();
  return { moved, restore: () => links.forEach((l) => unlinkSync(l)) };
}

async function holdSeconds(s: Stack, end: string): Promise<number> {
  return (await s.daemon.metrics.recorderReadHoldSeconds.get()).values.find((v) => v.labels.end === end && v.labels.venue === 'binance-spot')?.value ?? 0;
}

t.test('a full disk: recorder_dropped gaps with exact ranges, then recording resumes', { skip: !existsSync('/dev/full') && 'no /dev/full' }, async (t) => {
  const s = await recordingStack(t, { maxBufferBytes: 8192, holdReadsMs: 300 });
  const names = [...s.daemon.router.names];
  const { moved, restore } = await fullDisk(s);
  t.ok(await until(() => names.every((n) => s.daemon.router.stream(n)!.gapOpen), 5000, 10), 'every stream has an open gap once the buffer is full');
  t.ok(s.daemon.recorder.stats.dropped > 0, `the recorder refused ${s.daemon.recorder.stats.dropped} messages`);
  t.ok(s.daemon.recorder.stats.writeErrors > 0, 'its writes failed');
  t.ok((await holdSeconds(s, 'max_hold')) >= 0.3, 'the reads were held for holdReadsMs first, then read again');
  restore(); // the disk is back: the next retry creates a real file
  t.ok(await until(() => names.every((n) => !s.daemon.router.stream(n)!.gapOpen), 10_000), 'every gap closes once the recorder takes messages again');
  const received = names.map((n) => s.daemon.router.stream(n)!.received);
  t.ok(await until(() => names.every((n, i) => s.daemon.router.stream(n)!.received > received[i]! + 10), 5000), 'and recording goes on');
  await s.daemon.stop('test');

  const { run, invariant } = await invariantOf(s, moved);
  t.equal(invariant.streams.length, 3);
  t.ok(invariant.ok, formatInvariant(invariant));
  const gaps = run.entries.filter((g) => g.cause !== 'shutdown');
  t.same(gaps.map((g) => g.stream).sort(), [...names].sort(), 'one gap per stream');
  t.ok(gaps.every((g) => g.cause === 'recorder_dropped' && g.end !== null), 'cause recorder_dropped, closed');
  const trade = gaps.find((g) => g.stream === 'btcusdt@trade')!;
  t.ok(trade.missed !== null && trade.missed.count! > 0, `trade: ${trade.missed?.count} messages dropped, by ID`);
  t.equal(gaps.find((g) => g.stream === 'btcusdt@bookTicker')!.missed, null, 'bookTicker: no range');
  t.ok(invariant.streams.every((st) => st.recorded > 0 && st.missed > 0), 'each sequenced stream has recorded and dropped events');
});

t.test('a disk outage shorter than holdReadsMs: the sockets wait, nothing is dropped', { skip: !existsSync('/dev/full') && 'no /dev/full' }, async (t) => {
  const s = await recordingStack(t, { maxBufferBytes: 16_384, holdReadsMs: 8000 });
  const names = [...s.daemon.router.names];
  const { moved, restore } = await fullDisk(s);
  t.ok(await until(() => s.daemon.recorder.stats.writeErrors > 0 && s.daemon.feeds[0]!.readsHeld, 5000, 10), 'the writes fail and the sockets stop reading');
  const received = names.map((n) => s.daemon.router.stream(n)!.received);
  restore();
  t.ok(await until(() => !s.daemon.feeds[0]!.readsHeld, 8000, 10), 'the hold ends once the disk is back and the buffer drained');
  t.ok((await holdSeconds(s, 'drained')) > 0, 'ended by draining, not by holdReadsMs');
  t.equal(await holdSeconds(s, 'max_hold'), 0);
  t.ok(await until(() => names.every((n, i) => s.daemon.router.stream(n)!.received > received[i]! + 10), 5000), 'what was sent meanwhile is read, and more');
  t.equal(s.daemon.recorder.stats.dropped, 0, 'the recorder dropped nothing');
  await s.daemon.stop('test');

  const { run, invariant } = await invariantOf(s, moved);
  t.ok(invariant.ok, formatInvariant(invariant));
  t.same(run.entries.filter((g) => g.cause !== 'shutdown'), [], 'no gap: not one message was lost');
  t.ok(invariant.streams.every((st) => st.recorded > 0 && st.missed === 0), 'every sent event recorded');
});
