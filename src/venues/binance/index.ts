export { binanceSpot } from './spot.js';
export { binanceUsdm } from './usdm.js';
export { binanceCoinm } from './coinm.js';
export { frameStream, dataOffset, readBinanceStream } from './frame.js';
