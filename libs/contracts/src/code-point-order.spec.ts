import { compareCodePoints } from './code-point-order';

describe('compareCodePoints', () => {
  it('orders by code point where a locale would not', () => {
    // A locale puts "a" before "B", "_" before "-", and ignores case first; code points do not.
    expect(['b', 'a', 'B', 'A', 'a-b', 'a_b', 'ab', '_', '-', '10', '9'].sort(compareCodePoints)).toEqual([
      '-',
      '10',
      '9',
      'A',
      'B',
      '_',
      'a',
      'a-b',
      'a_b',
      'ab',
      'b',
    ]);
    expect('a'.localeCompare('B')).toBeLessThan(0); // the order this replaces
    expect(compareCodePoints('a', 'B')).toBeGreaterThan(0);
  });

  it('orders characters beyond U+FFFF after every other (UTF-16 code units would not)', () => {
    const [fullwidthTilde, emoji] = ['\uff5e', '\u{1f600}'];
    expect(emoji < fullwidthTilde).toBe(true);
    expect(compareCodePoints(fullwidthTilde, emoji)).toBe(-1);
    expect(compareCodePoints(`x${emoji}a`, `x${emoji}b`)).toBe(-1);
  });

  it('puts a prefix first and finds equal strings equal', () => {
    expect(compareCodePoints('ab', 'abc')).toBe(-1);
    expect(compareCodePoints('abc', 'ab')).toBe(1);
    expect(compareCodePoints('', '')).toBe(0);
    expect(compareCodePoints('sku-1', 'sku-1')).toBe(0);
  });

  it('agrees with the order of the UTF-8 bytes (Postgres COLLATE "C")', () => {
    const strings = ['z', 'é', '\u{1f600}', '\uff5e', 'Z', 'e', '\u00ff', '\u0100'];
    const byBytes = [...strings].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect([...strings].sort(compareCodePoints)).toEqual(byBytes);
  });
});
