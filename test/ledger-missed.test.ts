import t from 'tap';
import { missedAny, missedBetween, readKeys } from '../src/ledger/missed.js';
import { binanceSpot } from '../src/venues/binance/spot.js';
import { binanceUsdm } from '../src/venues/binance/usdm.js';

const rule = (venue: typeof binanceSpot, type: string) => venue.streamType(type)!.sequence;
/** The stream type's own key reader over a payload's JSON text (what recovery reads from a recording). */
const sequenceKeys = (venue: typeof binanceSpot, type: string, data: object) => readKeys(venue.streamType(type)!, JSON.stringify(data));

t.test('readKeys reads the fields the venue rules name', async (t) => {
  t.same(sequenceKeys(binanceSpot, 'trade', { e: 'trade', t: 12345 }), { first: 12345, last: 12345, prev: null, reset: false });
  t.same(sequenceKeys(binanceSpot, 'aggTrade', { a: 26129 }), { first: 26129, last: 26129, prev: null, reset: false });
  t.same(sequenceKeys(binanceSpot, 'depth@100ms', { U: 157, u: 160 }), { first: 157, last: 160, prev: null, reset: false });
  t.same(sequenceKeys(binanceUsdm, 'depth@100ms', { U: 157, u: 160, pu: 149 }), { first: 157, last: 160, prev: 149, reset: false });
  t.equal(sequenceKeys(binanceUsdm, 'depth@100ms', { U: 157, u: 160 }), null, 'futures depth without pu');
  t.equal(sequenceKeys(binanceSpot, 'trade', { e: 'trade' }), null);
  t.same(sequenceKeys(binanceSpot, 'bookTicker', { u: 400900217 }), { first: 400900217, last: 400900217, prev: null, reset: false });
});

t.test('missedBetween: trade and aggTrade count messages', async (t) => {
  const trade = rule(binanceSpot, 'trade');
  t.same(missedBetween(trade, 100, { first: 106, last: 106, prev: null }), { field: 't', from: 101, to: 105, count: 5 });
  t.same(missedBetween(trade, 100, { first: 101, last: 101, prev: null }), { field: 't', from: 101, to: 100, count: 0 }, 'nothing missed');
  t.same(missedBetween(trade, 100, { first: 99, last: 99, prev: null }), { field: 't', from: 101, to: 100, count: 0 }, 'a duplicate');
  t.same(missedBetween(rule(binanceSpot, 'aggTrade'), 26129, { first: 26200, last: 26200, prev: null }), { field: 'a', from: 26130, to: 26199, count: 70 });
  t.equal(missedBetween(trade, null, { first: 5, last: 5, prev: null }), null, 'last key unknown');
});

t.test('missedBetween: diff depth gives the update-ID range, count unknown', async (t) => {
  t.same(missedBetween(rule(binanceSpot, 'depth@100ms'), 160, { first: 171, last: 175, prev: null }), { field: 'U/u', from: 161, to: 170, count: null });
  t.same(missedBetween(rule(binanceSpot, 'depth'), 160, { first: 161, last: 175, prev: null }), { field: 'U/u', from: 161, to: 160, count: 0 });
  // Futures link by pu: the missed events ended at the next event's pu.
  t.same(missedBetween(rule(binanceUsdm, 'depth@100ms'), 160, { first: 190, last: 199, prev: 185 }), { field: 'U/u', from: 161, to: 185, count: null });
  t.same(missedBetween(rule(binanceUsdm, 'depth@100ms'), 160, { first: 170, last: 180, prev: 160 }), { field: 'U/u', from: 161, to: 160, count: 0 });
});

t.test('missedBetween: null for streams whose IDs jump (bookTicker, partial depth, klines, tickers)', async (t) => {
  for (const type of ['bookTicker', 'depth5', 'depth20@100ms', 'kline_1m', 'ticker', 'miniTicker', 'avgPrice']) {
    t.equal(missedBetween(rule(binanceSpot, type), 1, { first: 100, last: 100, prev: null }), null, type);
  }
});

t.test('missedAny', async (t) => {
  t.equal(missedAny(null), false);
  t.equal(missedAny({ field: 't', from: 5, to: 4, count: 0 }), false);
  t.equal(missedAny({ field: 't', from: 5, to: 5, count: 1 }), true);
  t.equal(missedAny({ field: 'U/u', from: 5, to: 9, count: null }), true);
});
