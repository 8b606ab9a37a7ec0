import { stripVTControlCharacters } from 'node:util';
import { vi } from 'vitest';
import { runCli } from '../../src/cli/program.ts';

/**
 * Runs the CLI in-process and captures what it prints. Colours are stripped: picocolors turns
 * them on when `CI` is set, as it is on the CI machine.
 */
export async function cli(...args: string[]): Promise<{ code: number; out: string[]; err: string }> {
  const err: string[] = [];
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    err.push(String(chunk));
    return true;
  });
  const out: string[] = [];
  try {
    const code = await runCli(['node', 'tsform', ...args], (l) => out.push(stripVTControlCharacters(l)));
    return { code, out, err: stripVTControlCharacters(err.join('')) };
  } finally {
    spy.mockRestore();
  }
}
