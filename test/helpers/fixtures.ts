import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Frames Binance really sent, recorded by the cryptofeed project (github.com/bmoscon/cryptofeed,
 * sample_data/, XFree86 1.1 licence): see test/fixtures/binance/README.md.
 */
export function fixtureFrames(name: 'spot-stream' | 'usdm-stream'): Array<{ recv: number; frame: string }> {
  const path = fileURLToPath(new URL(`../fixtures/binance/${name}.ndjson`, import.meta.url));
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { recv: number; frame: string });
}
