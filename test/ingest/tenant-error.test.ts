import { describe, expect, it } from 'vitest';
import type { Adapter } from '../../src/adapters/adapter.ts';
import { CancelledError, Codes, errorClassOf, TransientError, TsformError } from '../../src/errors.ts';
import { asTenantError } from '../../src/ingest/run-capture.ts';

/** asTenantError reads no warehouse state: the error alone decides its code and class. */
const wh = {} as Adapter;
const pgError = (code: string, message = 'x'): Error => Object.assign(new Error(message), { code });

describe('a capture failure as the runner sees it', () => {
  it('a lost OLTP connection is transient (the runner retries the extract from its watermark), with its code TSF409', () => {
    for (const err of [pgError('08006', 'connection failure'), pgError('ECONNRESET'), new Error('Connection terminated unexpectedly')]) {
      const e = asTenantError(wh, 'p_1', err);
      expect(e).toBeInstanceOf(TransientError);
      expect([e.code, errorClassOf(e)]).toEqual([Codes.connection, 'transient']);
      expect(e.message).toContain('p_1');
    }
  });

  it('a read stopped at its statement timeout is cancelled, TSF411; a SQL error is permanent, TSF401', () => {
    const timedOut = asTenantError(wh, 'p_1', pgError('57014', 'canceling statement due to statement timeout'));
    expect(timedOut).toBeInstanceOf(CancelledError);
    expect([timedOut.code, errorClassOf(timedOut)]).toEqual([Codes.timeout, 'cancelled']);
    const broken = asTenantError(wh, 'p_1', pgError('42P01', 'relation "x" does not exist'));
    expect([broken.code, errorClassOf(broken)]).toEqual([Codes.sqlError, 'permanent']);
  });

  it('keeps the code and class of tsform’s own errors', () => {
    const held = asTenantError(wh, 'p_1', new TransientError('held', Codes.tenantLocked));
    expect([held.code, errorClassOf(held)]).toEqual([Codes.tenantLocked, 'transient']);
    const drift = asTenantError(wh, 'p_1', new TsformError(Codes.schemaChanged, 'type changed', { file: 'models/sources.yml' }));
    expect([drift.code, errorClassOf(drift), drift.where]).toEqual([Codes.schemaChanged, 'permanent', { file: 'models/sources.yml' }]);
  });
});
