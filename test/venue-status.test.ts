import t from 'tap';
import { binanceStatus, bybitStatus, okxStatus } from '../src/venues/status.js';

// Each venue's status endpoint body read as "in maintenance or not" (docs/venues.md); a body of
// another shape is null (the poll is logged and ignored), never a false "normal".

t.test('binance: status 0 / 1', async (t) => {
  t.same(binanceStatus('{"status":0,"msg":"normal"}'), { status: 0, msg: 'normal' });
  t.same(binanceStatus('{"status":1,"msg":"system_maintenance"}'), { status: 1, msg: 'system_maintenance' });
  t.equal(binanceStatus('{"status":2}'), null);
  t.equal(binanceStatus('<html>'), null);
});

t.test('bybit: an ongoing announcement is maintenance', async (t) => {
  const body = (state: string) =>
    JSON.stringify({ retCode: 0, retMsg: 'OK', result: { list: [{ id: 'x', title: 'System upgrade', state, begin: '1', end: '2' }] } });
  t.same(bybitStatus(body('ongoing')), { status: 1, msg: 'System upgrade' });
  t.same(bybitStatus(body('scheduled')), { status: 0, msg: 'normal' });
  t.same(bybitStatus('{"retCode":0,"result":{"list":[]}}'), { status: 0, msg: 'normal' });
  t.equal(bybitStatus('{"retCode":10001,"result":{}}'), null, 'an error reply is not "normal"');
  t.equal(bybitStatus('nope'), null);
});

t.test('okx: an ongoing announcement is maintenance', async (t) => {
  t.same(okxStatus('{"code":"0","msg":"","data":[{"title":"Spot upgrade","state":"ongoing","begin":"1","end":"2","serviceType":"1"}]}'), { status: 1, msg: 'Spot upgrade' });
  t.same(okxStatus('{"code":"0","msg":"","data":[{"title":"Later","state":"scheduled"}]}'), { status: 0, msg: 'normal' });
  t.equal(okxStatus('{"code":"50011","msg":"Too Many Requests"}'), null);
});
