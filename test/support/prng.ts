/** mulberry32: a small seeded [0, 1) generator, so random tests repeat exactly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The seed of a randomized test: `TSFORM_TEST_SEED` when set (to replay a failure, or to try
 * other seeds), else the test's own fixed seed. Put it in the test's name so a failure shows it.
 */
export function testSeed(fallback: number): number {
  const fromEnv = process.env.TSFORM_TEST_SEED;
  if (fromEnv === undefined || fromEnv === '') return fallback;
  const seed = Number(fromEnv);
  if (!Number.isSafeInteger(seed)) throw new Error(`TSFORM_TEST_SEED must be an integer, not '${fromEnv}'`);
  return seed;
}
