import { readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { startSimulator } from '../src/simulator/index.js';
import type { VenueName } from '../src/venues/index.js';
import { connect, waitFor, type Client } from './fixtures/sim-client.js';
import { getVenue } from '../src/venues/index.js';
import { shape } from './helpers/shape.js';

/**
 * The simulator must not drift from what Binance really sends: for every kind of frame in the
 * recordings (test/fixtures/binance, real frames from 2021), the simulator's frames have the same keys,
 * in the same order, with the same JSON types, nested objects included.
 */


/** Stream type without the symbol, e.g. `depth@100ms`. */
const kindOf = (stream: string): string => stream.slice(stream.indexOf('@') + 1);

function fixtureShapes(file: string): Map<string, Set<string>> {
  const kinds = new Map<string, Set<string>>();
  for (const line of readFileSync(new URL(`./fixtures/binance/${file}`, import.meta.url), 'utf8').split('\n')) {
    if (line === '') continue;
    const frame = JSON.parse(JSON.parse(line).frame) as { stream: string; data: unknown };
    const kind = kindOf(frame.stream);
    if (!kinds.has(kind)) kinds.set(kind, new Set());
    kinds.get(kind)!.add(JSON.stringify(shape(frame.data)));
  }
  return kinds;
}

/** Depth levels are [price, quantity] pairs of decimal strings. */
function checkLevels(t: Test, kind: string, d: Record<string, unknown>, where: string): void {
  if (!kind.startsWith('depth')) return;
  for (const key of ['b', 'a', 'bids', 'asks']) {
    const levels = d[key];
    if (levels === undefined) continue;
    t.ok(
      Array.isArray(levels) && levels.every((l) => Array.isArray(l) && l.length === 2 && l.every((x) => typeof x === 'string' && /^\d+\.?\d*$/.test(x))),
      `${where}: ${key} holds [price, qty] string pairs`,
    );
  }
}

/**
 * One combined connection per route the streams need (spot: /stream; USD-M: /public/stream for book
 * data, /market/stream for the rest, since 2026-04-23), and the connection that carries a stream.
 */
async function connectRouted(wsUrl: string, venue: VenueName, streams: string[]): Promise<{ on(stream: string): Client; all: Client[] }> {
  const v = getVenue(venue)!;
  const byRoute = new Map<string, string[]>();
  for (const s of streams) {
    const route = v.streamType(s.slice(s.indexOf('@') + 1))!.route;
    byRoute.set(route, [...(byRoute.get(route) ?? []), s]);
  }
  const clients = new Map<string, Client>();
  for (const [route, names] of byRoute) clients.set(route, await connect(`${wsUrl}${route}?streams=${names.join('/')}`));
  return {
    on: (stream) => clients.get(v.streamType(stream.slice(stream.indexOf('@') + 1))!.route)!,
    all: [...clients.values()],
  };
}

for (const [venue, file] of [
  ['binance-spot', 'spot-stream.ndjson'],
  ['binance-usdm', 'usdm-stream.ndjson'],
] as Array<[VenueName, string]>) {
  t.test(`${venue}: generated frames have the recorded key sets and order`, async (t) => {
    const fixture = fixtureShapes(file);
    t.ok(fixture.size >= 4, `kinds in the recording: ${[...fixture.keys()].join(', ')}`);
    for (const [kind, shapes] of fixture) t.equal(shapes.size, 1, `${kind}: one shape in the recording`);

    const sim = await startSimulator({ venue, eventsPerSecond: 50, tickMs: 20 });
    t.teardown(() => sim.close());
    const streams = [...fixture.keys()].map((k) => `btcusdt@${k}`);
    const conns = await connectRouted(sim.wsUrl, venue, streams);
    await waitFor(
      () => streams.every((s) => conns.on(s).frames.filter((f) => f.startsWith(`{"stream":"${s}"`)).length >= 3),
      5000,
      'three frames of each kind',
    );
    await Promise.all(conns.all.map((c) => c.close()));

    for (const f of conns.all.flatMap((c) => c.frames)) {
      const frame = JSON.parse(f) as { stream: string; data: Record<string, unknown> };
      t.same(Object.keys(frame), ['stream', 'data']);
      const kind = kindOf(frame.stream);
      const expected = fixture.get(kind);
      if (expected === undefined) {
        t.fail(`unexpected stream ${frame.stream}`);
        continue;
      }
      t.same(shape(frame.data), JSON.parse([...expected][0]!), `${venue} ${kind}: keys, order and types`);
      checkLevels(t, kind, frame.data, `${venue} ${kind}`);
    }
  });
}

/**
 * Kinds that are not in the recordings, against the key order documented by Binance
 * (binance-spot-api-docs web-socket-streams.md; USD-M websocket-market-streams).
 */
const DOCUMENTED: Record<VenueName, Record<string, string[]>> = {
  'binance-spot': {
    trade: ['e', 'E', 's', 't', 'p', 'q', 'T', 'm', 'M'],
    depth5: ['lastUpdateId', 'bids', 'asks'],
    miniTicker: ['e', 'E', 's', 'c', 'o', 'h', 'l', 'v', 'q'],
    ticker: ['e', 'E', 's', 'p', 'P', 'w', 'x', 'c', 'Q', 'b', 'B', 'a', 'A', 'o', 'h', 'l', 'v', 'q', 'O', 'C', 'F', 'L', 'n'],
    avgPrice: ['e', 'E', 's', 'i', 'w', 'T'],
  },
  'binance-usdm': {
    depth5: ['e', 'E', 'T', 's', 'U', 'u', 'pu', 'b', 'a'],
    miniTicker: ['e', 'E', 's', 'c', 'o', 'h', 'l', 'v', 'q'],
    ticker: ['e', 'E', 's', 'p', 'P', 'w', 'c', 'Q', 'o', 'h', 'l', 'v', 'q', 'O', 'C', 'F', 'L', 'n'],
  },
};

for (const venue of Object.keys(DOCUMENTED) as VenueName[]) {
  t.test(`${venue}: documented shapes of the kinds not recorded`, async (t) => {
    const sim = await startSimulator({ venue, eventsPerSecond: 50, tickMs: 20 });
    t.teardown(() => sim.close());
    const kinds = DOCUMENTED[venue];
    const conns = await connectRouted(sim.wsUrl, venue, Object.keys(kinds).map((k) => `ethbtc@${k}`));
    for (const [kind, keys] of Object.entries(kinds)) {
      const d = JSON.parse(await conns.on(`ethbtc@${kind}`).next((f) => f.startsWith(`{"stream":"ethbtc@${kind}"`))).data as Record<string, unknown>;
      t.same(Object.keys(d), keys, `${venue} ${kind}`);
      checkLevels(t, kind, d, `${venue} ${kind}`);
      if (kind === 'depth5') t.equal(((d.bids ?? d.b) as unknown[]).length, 5, 'five levels');
    }
    await Promise.all(conns.all.map((c) => c.close()));
  });
}
