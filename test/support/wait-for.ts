/**
 * Waits until `condition` holds, checking every `everyMs`; fails after `withinMs` with what it
 * waited for. For states the code under test offers no event for: a test never sleeps a fixed
 * time hoping a state has been reached. The deadline is monotonic (performance.now), so a faked
 * wall clock cannot stretch or cut it.
 */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, opts: { withinMs?: number; everyMs?: number } = {}): Promise<void> {
  const withinMs = opts.withinMs ?? 10_000;
  const giveUpAt = performance.now() + withinMs;
  for (;;) {
    if (await condition()) return;
    if (performance.now() >= giveUpAt) throw new Error(`waited ${withinMs} ms for ${what}`);
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 20));
  }
}
