import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hmacSha256Hex } from '../../src/security/hmac.ts';
import { prng, testSeed } from '../support/prng.ts';

const reference = (key: Buffer, m: string) => createHmac('sha256', key).update(m, 'utf8').digest('hex');

describe('hmacSha256Hex', () => {
  it('equals createHmac at the reused buffer\'s edges: empty, block-sized, multi-byte, at and over the size limit', () => {
    const key = randomBytes(32);
    const messages = ['', 'a', 'x'.repeat(55), 'x'.repeat(64), 'Müller|Ørsted|1971-03-09', '𝔘nicode\u0000NUL', 'x'.repeat(1365), 'é'.repeat(1365), 'é'.repeat(1366), '€'.repeat(5000), 'y'.repeat(100_000)];
    for (const m of messages) expect(hmacSha256Hex(key, m), `length ${m.length}`).toBe(reference(key, m));
  });

  it('keeps keys apart and a short message after a long one carries nothing of it', () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    expect(hmacSha256Hex(a, 'same')).not.toBe(hmacSha256Hex(b, 'same'));
    hmacSha256Hex(a, 'z'.repeat(1000));
    expect(hmacSha256Hex(a, 'z')).toBe(reference(a, 'z'));
    expect(hmacSha256Hex(b, 'z')).toBe(reference(b, 'z'));
  });

  it(`equals createHmac on random messages and keys of 1 to 100 bytes (seed ${testSeed(16)})`, () => {
    const rnd = prng(testSeed(16));
    for (let i = 0; i < 300; i++) {
      const key = Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 100) }, () => Math.floor(rnd() * 256)));
      const m = Array.from({ length: Math.floor(rnd() * 300) }, () => String.fromCodePoint(rnd() < 0.8 ? 32 + Math.floor(rnd() * 90) : 0xa0 + Math.floor(rnd() * 0x2000))).join('');
      expect(hmacSha256Hex(key, m)).toBe(reference(key, m));
    }
  });
});
