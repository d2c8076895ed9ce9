/** The key order and JSON types of a value, nested objects included (arrays as 'array'). */
export type Shape = string | Array<[string, Shape]>;

export function shape(v: unknown): Shape {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'object') return Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, shape(x)]);
  return typeof v;
}
