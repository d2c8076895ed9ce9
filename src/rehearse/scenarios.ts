import { binanceSpot } from '../venues/binance/spot.js';
import { SERVER_SHUTDOWN_REASON } from '../ledger/maintenance.js';
import type { GapEntry } from '../ledger/types.js';
import type { Rig, RigOptions } from './rig.js';
import { systemClock } from '../clock.js';

/**
 * The rehearsals `feedkeeper rehearse` plays (docs/gap-ledger.md, "Rehearsals"). Each sets up the
 * rig, plays its faults against the daemon, stops it, and says what the ledger must then hold; the
 * runner (rehearse.ts) adds the invariant check and the report.
 */

export interface RehearsalCheck {
  name: string;
  ok: boolean;
  detail?: string;
}

export interface Scenario {
  name: string;
  /** One line, for the usage text. */
  summary: string;
  /** The rig: what is subscribed, how the exchange and the daemon are set up. */
  rig(venue: string): Omit<RigOptions, 'log' | 'keep' | 'signal'>;
  /** Why the scenario cannot be played on a venue (it announces no restart), or null. */
  unavailable?(venue: string): string | null;
  /** Start the daemon, play the faults, end with the final stop (rig.stopDaemon or SIGTERM). */
  play(rig: Rig): Promise<void>;
  /** What the ledger must hold afterwards: `gaps` are the entries opened before the final stop. */
  expect(rig: Rig, gaps: GapEntry[]): RehearsalCheck[];
}

const BINANCE = ['BTCUSDT', 'ETHUSDT', 'BNBUSDT', 'SOLUSDT', 'XRPUSDT', 'DOGEUSDT', 'ADAUSDT', 'TRXUSDT', 'LINKUSDT', 'AVAXUSDT'];

/**
 * What each venue's rehearsal subscribes: its sequenced streams (so the invariant has IDs to check)
 * and a stream whose IDs jump. Venue names and spellings are the venue's own (docs/venues.md).
 */
const MARKETS: Record<string, { symbols: string[]; streams: string[] }> = {
  'binance-spot': { symbols: BINANCE, streams: ['trade', 'aggTrade', 'depth@100ms', 'bookTicker'] },
  'binance-usdm': { symbols: BINANCE.slice(0, 6), streams: ['aggTrade', 'depth@100ms', 'bookTicker'] },
  'binance-coinm': { symbols: ['BTCUSD_PERP', 'ETHUSD_PERP', 'SOLUSD_PERP', 'XRPUSD_PERP'], streams: ['aggTrade', 'depth@100ms', 'bookTicker'] },
  'bybit-spot': { symbols: ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT'], streams: ['publicTrade', 'orderbook.50', 'tickers'] },
  'bybit-linear': { symbols: ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT'], streams: ['publicTrade', 'orderbook.50', 'tickers'] },
  okx: { symbols: ['BTC-USDT', 'ETH-USDT', 'SOL-USDT', 'XRP-USDT'], streams: ['trades', 'books', 'tickers'] },
  'kucoin-spot': { symbols: ['BTC-USDT', 'ETH-USDT', 'SOL-USDT', 'XRP-USDT'], streams: ['match', 'level2', 'ticker'] },
  'bitget-spot': { symbols: ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT'], streams: ['trade', 'books', 'ticker'] },
  'bitget-usdt-futures': { symbols: ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT'], streams: ['trade', 'books', 'ticker'] },
  'gate-spot': { symbols: ['BTC_USDT', 'ETH_USDT', 'SOL_USDT', 'XRP_USDT'], streams: ['trades', 'order_book_update', 'book_ticker'] },
  coinbase: { symbols: ['BTC-USD', 'ETH-USD', 'SOL-USD', 'XRP-USD'], streams: ['market_trades', 'level2', 'ticker'] },
};

/** The venues a rehearsal can run on. */
export const REHEARSAL_VENUES = Object.keys(MARKETS);

function market(venue: string): { symbols: string[]; streams: string[] } {
  const m = MARKETS[venue];
  if (m === undefined) throw new RangeError(`no rehearsal market for venue ${venue} (${REHEARSAL_VENUES.join(', ')})`);
  return m;
}

const SIM = { eventsPerSecond: 10, tickMs: 50 };

/** The 2026-07-09 window's reason, as the default config carries it. */
const JULY_REASON = binanceSpot.maintenanceWindows![0]!.reason;

/** The window a venue's maintenance rehearsal plays: Binance spot's July upgrade, else a generic one. */
function reasonFor(venue: string): string {
  return venue === 'binance-spot' ? JULY_REASON : `${venue} scheduled maintenance`;
}
/** The maintenance rehearsal: 1 h of 2026-07-09 07:00 UTC compressed to this much exchange downtime. */
const MAINTENANCE_MS = 3000;
const WINDOW_LEAD_MS = 2000;
const WINDOW_MS = 8000;

function check(name: string, ok: boolean, detail?: string): RehearsalCheck {
  return detail === undefined ? { name, ok } : { name, ok, detail };
}

function byStream(gaps: GapEntry[]): Map<string, GapEntry[]> {
  const m = new Map<string, GapEntry[]>();
  for (const g of gaps) m.set(g.stream, [...(m.get(g.stream) ?? []), g]);
  return m;
}

/** Every stream has exactly one gap, closed, and `fits` says it is the expected one. */
function oneGapEach(rig: Rig, gaps: GapEntry[], what: string, fits: (g: GapEntry) => string | null): RehearsalCheck[] {
  const per = byStream(gaps);
  const counts = rig.streams.filter((s) => (per.get(s)?.length ?? 0) !== 1);
  const misfits: string[] = [];
  for (const s of rig.streams) {
    const g = per.get(s)?.[0];
    if (g === undefined) continue;
    const why = g.end === null ? 'still open' : fits(g);
    if (why !== null) misfits.push(`${s}: ${why}`);
  }
  const strays = [...per.keys()].filter((s) => !rig.streams.includes(s));
  return [
    check(
      `every one of the ${rig.streams.length} streams has exactly one gap`,
      counts.length === 0 && strays.length === 0,
      counts.length > 0 ? `${counts.length} do not, e.g. ${counts.slice(0, 3).map((s) => `${s} (${per.get(s)?.length ?? 0})`).join(', ')}` : undefined,
    ),
    check(`each is ${what}`, misfits.length === 0, misfits.length > 0 ? `${misfits.length} are not, e.g. ${misfits.slice(0, 3).join('; ')}` : undefined),
  ];
}

function missedSomething(rig: Rig, gaps: GapEntry[]): RehearsalCheck {
  // Bybit's trade IDs are not contiguous: nothing can be counted there, and the check says so.
  const kind = (s: string): string | undefined => rig.venue.streamType(rig.venue.typeOf(s))?.sequence.kind;
  const countable = rig.streams.some((s) => kind(s) === 'contiguous');
  if (!countable) {
    // KuCoin level2 and Bitget books: ranges without a count; the other streams' gaps are time windows.
    const ranged = new Set(rig.streams.filter((s) => kind(s) === 'range' || kind(s) === 'linked'));
    if (ranged.size === 0) return check(`no ${rig.venue.name} stream has contiguous IDs: its gaps are time windows (missed null)`, gaps.every((g) => g.missed === null));
    const wrong = gaps.filter((g) => (ranged.has(g.stream) ? g.missed === null || g.missed.to < g.missed.from : g.missed !== null));
    return check(`${rig.venue.name}: book gaps name the missed range, the others are time windows`, wrong.length === 0, wrong.length > 0 ? `${wrong.length} do not, e.g. ${wrong[0]!.stream}` : undefined);
  }
  const counted = gaps.filter((g) => g.missed !== null && g.missed.count !== null);
  const empty = counted.filter((g) => g.missed!.count === 0);
  return check(
    'trade gaps say how many messages were missed (count > 0)',
    counted.length > 0 && empty.length === 0,
    counted.length === 0 ? 'no gap with a count' : empty.length > 0 ? `${empty.length} with count 0, e.g. ${empty[0]!.stream}` : undefined,
  );
}

function noGaps(gaps: GapEntry[]): RehearsalCheck {
  return check('no gap entry (nothing was lost)', gaps.length === 0, gaps.length > 0 ? `${gaps.length}, e.g. ${gaps[0]!.stream} ${gaps[0]!.cause}` : undefined);
}

function noViolations(rig: Rig): RehearsalCheck {
  const v = rig.sim.violations;
  return check('the exchange saw no limit broken', v.length === 0, v.length > 0 ? `${v.length}: ${v[0]!.rule} ${v[0]!.detail}` : undefined);
}

/** In-process daemon up and every stream recorded. */
async function warmUp(rig: Rig): Promise<void> {
  await rig.startDaemon();
  await rig.waitFor('every stream to deliver', () => rig.everyStreamRecorded(3), 10_000, 100);
  rig.step('every stream is recording');
}

/**
 * Until every stream has a gap of this cause in the ledger, then until all of them are closed: the
 * daemon saw the fault, then every stream delivered again. Read from the ledger file, so it works
 * for a child daemon too, and a gap that opens and closes between two polls is not missed.
 */
async function darkThenBack(rig: Rig, cause: GapEntry['cause'], ms: number): Promise<void> {
  const ofCause = async (): Promise<Map<string, GapEntry>> =>
    new Map((await rig.ledger()).filter((g) => g.cause === cause).map((g) => [g.stream, g]));
  const every = (ok: (g: GapEntry | undefined) => boolean) => async (): Promise<boolean> => {
    const gaps = await ofCause();
    return rig.streams.every((s) => ok(gaps.get(s)));
  };
  await rig.waitFor(`a ${cause} gap on every stream`, every((g) => g !== undefined), ms);
  rig.step(`every stream has a ${cause} gap in the ledger`);
  await rig.waitFor(`every ${cause} gap to close`, every((g) => g !== undefined && g.end !== null), ms);
  rig.step(`every stream delivers again: its gap closed with the range missed`);
}

const maintenance: Scenario = {
  name: 'maintenance',
  summary: 'the 2026-07-09 07:00 UTC window compressed to seconds: calendar window, every connection cut, upgrades refused with 503, then back',
  rig(venue) {
    const start = systemClock.now() + WINDOW_LEAD_MS;
    return {
      venue,
      ...market(venue),
      sim: SIM,
      config: {
        maintenance: {
          windows: [{ start: new Date(start).toISOString(), end: new Date(start + WINDOW_MS).toISOString(), reason: `${reasonFor(venue)} [rehearsal: compressed to ${WINDOW_MS / 1000} s]` }],
          statusPollMs: 250,
        },
      },
    };
  },
  async play(rig) {
    await warmUp(rig);
    const w = rig.config.maintenance.windows[0]!;
    const start = Date.parse(w.start);
    // The exchange goes down half a second into the window, as Binance may at any time within it.
    const wait = start + 500 - systemClock.now();
    if (wait > 0) await rig.sleep(wait);
    rig.step(`maintenance window in force (${w.start} .. ${w.end})`);
    rig.sim.maintenance(MAINTENANCE_MS);
    rig.step(`exchange in maintenance for ${MAINTENANCE_MS / 1000} s: every connection closed (1001), upgrades refused with 503, system status 1`);
    await darkThenBack(rig, 'maintenance', MAINTENANCE_MS + 10_000);
    const refused = rig.sim.upgradeAttempts.filter((a) => a.status === 503).length;
    rig.step(`reconnected after ${refused} upgrade(s) refused with 503`);
    await rig.sleep(1000);
    await rig.stopDaemon();
  },
  expect(rig, gaps) {
    const reason = String(rig.config.maintenance.windows[0]!.reason);
    return [
      ...oneGapEach(rig, gaps, `cause maintenance, close code 1001, tagged "${reason}"`, (g) =>
        g.cause !== 'maintenance' ? `cause ${g.cause}` : g.code !== 1001 ? `code ${g.code}` : g.maintenance !== reason ? `tag ${g.maintenance}` : null,
      ),
      missedSomething(rig, gaps),
      check('the exchange refused upgrades with 503 meanwhile', rig.sim.upgradeAttempts.some((a) => a.status === 503)),
      noViolations(rig),
    ];
  },
};

const rotation: Scenario = {
  name: 'rotation',
  summary: 'connections live 4 s: the daemon replaces each before the exchange cuts it, and loses nothing',
  rig: (venue) => ({
    venue,
    ...market(venue),
    sim: { ...SIM, maxLifetimeMs: 4000 },
    config: { connection: { maxLifetimeMs: 4000, rotateBeforeMs: 2500, handshakeTimeoutMs: 1000, switchoverTimeoutMs: 1500 } },
  }),
  async play(rig) {
    await warmUp(rig);
    const before = rig.sim.totalConnections;
    await rig.waitFor('two lifetime rotations', () => rig.sim.totalConnections >= before + 2, 10_000, 100);
    rig.step(`${rig.sim.totalConnections - before} rotations: each replacement overlapped the old connection before it closed`);
    await rig.sleep(500);
    await rig.stopDaemon();
  },
  expect: (rig, gaps) => [noGaps(gaps), check('connections were rotated', rig.sim.totalConnections >= 3, `${rig.sim.totalConnections} connections in all`), noViolations(rig)],
};

const serverShutdown: Scenario = {
  name: 'server-shutdown',
  summary: 'the exchange announces a restart twice (Binance serverShutdown, OKX 64008): the daemon switches over at once and loses nothing',
  rig: (venue) => ({ venue, ...market(venue), sim: { ...SIM, shutdownGraceMs: 1500 } }),
  // Bybit, KuCoin, Gate, Bitget and Coinbase announce nothing before they cut a connection (facts sheet, "lifetime / notices", KuCoin "status", Bitget "lifetime").
  unavailable: (venue) => (venue.startsWith('bybit-') || venue === 'kucoin-spot' || venue === 'gate-spot' || venue.startsWith('bitget-') || venue === 'coinbase' ? `${venue} announces no restart: nothing to rehearse` : null),
  async play(rig) {
    await warmUp(rig);
    for (let i = 1; i <= 2; i++) {
      const before = rig.sim.totalConnections;
      const n = rig.sim.serverShutdown();
      rig.step(`restart notice sent on ${n} connection(s); the exchange closes them in 1.5 s`);
      await rig.waitFor('the replacement', () => rig.sim.totalConnections > before && rig.sim.connections().every((c) => c.state === 'open'), 10_000);
      rig.step(`switched over: ${rig.sim.connections().length} connection(s) open`);
      await rig.sleep(500);
    }
    await rig.stopDaemon();
  },
  expect: (rig, gaps) => {
    const windows = rig.daemon?.calendar.windows().filter((w) => w.reason === SERVER_SHUTDOWN_REASON) ?? [];
    return [noGaps(gaps), check('the notice opened a maintenance window in the calendar', windows.length > 0), noViolations(rig)];
  },
};

const STALE_AFTER_MS = 1500;

const stall: Scenario = {
  name: 'stall',
  summary: `the exchange goes silent with TCP up: after ${STALE_AFTER_MS / 1000} s every stream gets a stale gap, then the daemon reconnects`,
  rig: (venue) => ({ venue, ...market(venue), sim: SIM, config: { connection: { staleAfterMs: STALE_AFTER_MS } } }),
  async play(rig) {
    await warmUp(rig);
    const n = rig.sim.stall();
    rig.step(`${n} connection(s) stalled: no data, no pings, TCP open`);
    await darkThenBack(rig, 'stale', STALE_AFTER_MS + 10_000);
    rig.step(`(${rig.sim.totalConnections} connections in all: the stalled one was terminated after ${STALE_AFTER_MS / 1000} s of silence and replaced)`);
    await rig.sleep(1000);
    await rig.stopDaemon();
  },
  expect: (rig, gaps) => [...oneGapEach(rig, gaps, 'cause stale', (g) => (g.cause !== 'stale' ? `cause ${g.cause}` : null)), missedSomething(rig, gaps), noViolations(rig)],
};

const crash: Scenario = {
  name: 'crash',
  summary: 'the daemon (a child process) is SIGKILLed, the market goes on for 2 s, the daemon is restarted: daemon_down gaps with exact ranges',
  rig: (venue) => ({ venue, ...market(venue), sim: SIM }),
  async play(rig) {
    const first = rig.spawnDaemon();
    await rig.waitFor('every stream to be recorded', () => rig.everyStreamRecorded(5), 15_000, 100);
    rig.step('every stream is recording');
    first.process.kill('SIGKILL');
    const killed = await first.exited;
    rig.step(`daemon killed (${killed.signal ?? `exit ${killed.code}`}): nothing written at the end, the recording may end in a torn line`);
    await rig.sleep(2000);
    rig.step('the exchange went on for 2 s');
    const second = rig.spawnDaemon();
    await darkThenBack(rig, 'daemon_down', 15_000);
    await rig.sleep(1000);
    rig.endAt = systemClock.now();
    second.process.kill('SIGTERM');
    const timer = systemClock.setTimeout(() => second.process.kill('SIGKILL'), 5000);
    const end = await second.exited;
    systemClock.clearTimeout(timer);
    rig.step(`SIGTERM: the daemon exited with ${end.code ?? end.signal} after ${((systemClock.now() - rig.endAt) / 1000).toFixed(1)} s`);
    if (end.code !== 0) throw new Error(`the restarted daemon exited with ${end.code ?? end.signal}, not 0; its output:\n${second.output()}`);
  },
  expect: (rig, gaps) => [
    ...oneGapEach(rig, gaps, 'cause daemon_down, no connection', (g) => (g.cause !== 'daemon_down' ? `cause ${g.cause}` : g.connection !== null ? `connection ${g.connection}` : null)),
    missedSomething(rig, gaps),
    noViolations(rig),
  ],
};

export const scenarios: readonly Scenario[] = [maintenance, rotation, serverShutdown, stall, crash];

export function getScenario(name: string): Scenario | undefined {
  return scenarios.find((s) => s.name === name);
}
