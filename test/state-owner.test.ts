import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../src/config/load.js';
import { AttemptLog } from '../src/connection/attempt-log.js';
import { feedStatePaths } from '../src/feed.js';
import { Checkpointer } from '../src/ledger/recovery.js';
import { silentLogger } from '../src/log.js';
import { tempDir } from './helpers/stack.js';

// State that belongs to one daemon: two daemons with their own ledgers never share a checkpoint or
// an attempt log, and a file of another owner is ignored, never applied.

t.test('two daemons with their own ledger.path in one directory get their own state files', async (t) => {
  const a = loadConfig({ files: [], env: { FEEDKEEPER_LEDGER_PATH: './a/ledger.ndjson' } });
  const b = loadConfig({ files: [], env: { FEEDKEEPER_LEDGER_PATH: './b/ledger.ndjson' } });
  const same = loadConfig({ files: [], env: { FEEDKEEPER_LEDGER_PATH: './data/other.ndjson' } });
  t.equal(a.ledger.statePath, './a/ledger.state.json');
  t.equal(b.ledger.statePath, './b/ledger.state.json');
  t.equal(same.ledger.statePath, './data/other.state.json', 'two ledgers in one directory: two checkpoints');
  const pa = feedStatePaths(a, 0);
  const pb = feedStatePaths(b, 0);
  t.not(pa.state, pb.state);
  t.not(pa.attempts, pb.attempts);
  t.not(pa.owner, pb.owner);
  t.equal(pa.attempts, 'a/ledger.state.attempts.json');
});

t.test("a checkpoint or attempt log of another owner is ignored with a warning; one's own is read", async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'state.json');
  const lines: string[] = [];
  const logger = silentLogger();
  logger.warn = ((o: { event?: string }) => void lines.push(o.event ?? '')) as typeof logger.warn;
  const mine = new Checkpointer({ statePath: path, owner: '/x/ledger.ndjson#binance-spot', logger });
  await mine.save({ savedAt: 1, recording: null, streams: { 'btcusdt@trade': { key: 5, recv: 1 } }, clean: true });
  t.ok(existsSync(path));
  t.same((await mine.load())?.streams, { 'btcusdt@trade': { key: 5, recv: 1 } }, 'its own checkpoint');
  const theirs = new Checkpointer({ statePath: path, owner: '/y/ledger.ndjson#binance-spot', logger });
  t.equal(await theirs.load(), null, "another daemon's checkpoint is not applied");
  t.ok(lines.includes('state_not_ours'), 'and said so');

  const apath = join(dir, 'state.attempts.json');
  new AttemptLog(apath, logger, 'A').save([1, 2, 3]);
  t.match(JSON.parse(readFileSync(apath, 'utf8')), { owner: 'A', stamps: [1, 2, 3] });
  t.same(new AttemptLog(apath, logger, 'A').load(), [1, 2, 3]);
  t.same(new AttemptLog(apath, logger, 'B').load(), [], "another daemon's attempts are not counted");
});
