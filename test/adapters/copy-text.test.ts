import { describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { failureOf } from '../../src/ingest/capture.ts';
import { CopyTextReader } from '../../src/adapters/copy-text.ts';
import { canonicalType, planDrift, rawTypeOf } from '../../src/ingest/source-columns.ts';

describe('COPY text reader', () => {
  it('splits rows across chunk borders, maps \\N to NULL and unescapes', () => {
    const r = new CopyTextReader();
    const a = r.push(Buffer.from('p1\ta\\tb\t\\N\np2\tline\\nbreak'));
    const b = r.push(Buffer.from('\tback\\\\slash\n'));
    r.end();
    expect(a).toEqual([['p1', 'a\tb', null]]);
    expect(b).toEqual([['p2', 'line\nbreak', 'back\\slash']]);
  });
  it('refuses a stream cut inside a row', () => {
    const r = new CopyTextReader();
    r.push(Buffer.from('p1\tx'));
    expect(() => r.end()).toThrow(/middle of a row/);
  });
});

describe('source types and drift', () => {
  it('maps OLTP types to raw types and reads both engines back the same', () => {
    expect(rawTypeOf('numeric(18,2)')).toBe('DECIMAL(18,2)');
    expect(rawTypeOf('uuid')).toBe('VARCHAR');
    expect(canonicalType('timestamp with time zone')).toBe('TIMESTAMPTZ');
    expect(canonicalType('double')).toBe('DOUBLE PRECISION');
    expect(canonicalType('numeric(18,2)')).toBe('DECIMAL(18,2)');
  });
  it('names the table and column of an incompatible change', () => {
    const src = [{ name: 'a', sourceType: 'text', rawType: 'VARCHAR', nullable: true, hasDefault: false }];
    expect(() => planDrift('oltp.t', src, [{ name: 'a', type: 'integer' }])).toThrow(/oltp\.t: column "a" changed type/);
    expect(() => planDrift('oltp.t', src, [{ name: 'a', type: 'varchar' }, { name: 'b', type: 'varchar' }])).toThrow(/column "b" exists in raw but no longer/);
  });
});

describe('failure messages', () => {
  it('never carry the row a CSV error quotes', () => {
    const wh = { describeError: (e: unknown) => (e as Error).message } as unknown as Adapter;
    const f = failureOf(wh, 'p_x', new Error('Invalid Input Error: CSV Error on Line: 3 | Original Line: p_x\tMRN123\tJane'));
    // Its line number too: a model's error() could imitate this message with a number of its choosing.
    expect(f.message).toBe('p_x: Invalid Input Error: CSV Error (value withheld)');
  });
});
