/**
 * Orders strings by Unicode code point: the same on every host and in every locale (unlike
 * `localeCompare`), and the order of Postgres's `COLLATE "C"` on UTF-8. What is hashed or locked
 * in a sorted order (request hashes, SKUs, transaction ids) sorts with this.
 * (`<` on strings compares UTF-16 code units, which differs for characters beyond U+FFFF.)
 */
export function compareCodePoints(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const [x, y] = [a.codePointAt(i)!, b.codePointAt(i)!];
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++; // both strings hold the same surrogate pair here
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}
