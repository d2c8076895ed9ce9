/**
 * Status endpoints (Venue.parseSystemStatus): each venue's body read as "in maintenance or not".
 * A body that does not have the documented shape gives null: the poll is logged and ignored.
 */

/** Binance `GET /sapi/v1/system/status`: `{"status":0,"msg":"normal"}` or `{"status":1,"msg":"system_maintenance"}`. */
export function binanceStatus(body: string): { status: 0 | 1; msg: string } | null {
  try {
    const o = JSON.parse(body) as { status?: unknown; msg?: unknown };
    if ((o.status !== 0 && o.status !== 1) || (o.msg !== undefined && typeof o.msg !== 'string')) return null;
    return { status: o.status, msg: o.msg ?? '' };
  } catch {
    return null;
  }
}

/**
 * Maintenance announcements as Bybit (`{"retCode":0,"result":{"list":[...]}}`, `GET /v5/system/status`)
 * and OKX (`{"code":"0","data":[...]}`, `GET /api/v5/system/status`) list them: in maintenance while
 * one is `ongoing` (facts sheet, Bybit [B6], OKX [O5]).
 */
export function announcementStatus(list: (o: Record<string, unknown>) => unknown): (body: string) => { status: 0 | 1; msg: string } | null {
  return (body) => {
    try {
      const items = list(JSON.parse(body) as Record<string, unknown>);
      if (!Array.isArray(items)) return null;
      const ongoing = items.find((i) => typeof i === 'object' && i !== null && (i as { state?: unknown }).state === 'ongoing') as { title?: unknown } | undefined;
      if (ongoing === undefined) return { status: 0, msg: 'normal' };
      return { status: 1, msg: typeof ongoing.title === 'string' && ongoing.title !== '' ? ongoing.title : 'system_maintenance' };
    } catch {
      return null;
    }
  };
}

export const bybitStatus = announcementStatus((o) => (o.retCode === 0 ? (o.result as { list?: unknown } | undefined)?.list : undefined));
export const okxStatus = announcementStatus((o) => (o.code === '0' ? o.data : undefined));
