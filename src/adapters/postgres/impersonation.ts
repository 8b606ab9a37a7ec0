import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { safeDbMessage } from '../safe-message.ts';

/** insufficient_privilege: the refusal a probe hopes for. */
export const DENIED = '42501';

export type Outcome = { ok: true; rows: Record<string, unknown>[]; rowCount: number } | { ok: false; code: string; message: string };

/**
 * One impersonated session inside one transaction. A savepoint taken right after
 * `SET SESSION AUTHORIZATION` is where every failed or state-changing probe returns to.
 */
export class Impersonation {
  constructor(private readonly client: pg.PoolClient) {}

  async run(text: string, values: unknown[] = []): Promise<Outcome> {
    try {
      const r = await this.client.query(text, values);
      return { ok: true, rows: r.rows as Record<string, unknown>[], rowCount: r.rowCount ?? 0 };
    } catch (err) {
      if (!(err instanceof pg.DatabaseError)) throw err;
      await this.undo();
      return { ok: false, code: err.code ?? '', message: withoutCode(safeDbMessage(err, 1)) };
    }
  }

  /** Lines of a COPY TO STDOUT (text format: one line per row); the content is dropped. */
  async copyLines(text: string): Promise<Outcome & { lines?: number }> {
    let lines = 0;
    try {
      const stream = this.client.query(copyTo(text));
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
      }
      return { ok: true, rows: [], rowCount: lines, lines };
    } catch (err) {
      if (!(err instanceof pg.DatabaseError)) throw err;
      await this.undo();
      return { ok: false, code: err.code ?? '', message: withoutCode(safeDbMessage(err, 1)) };
    }
  }

  async undo(): Promise<void> {
    await this.client.query('ROLLBACK TO SAVEPOINT tsform_probe');
  }
}

export const count = (o: Outcome, key = 'total'): number => (o.ok ? Number(o.rows[0]?.[key] ?? 0) : 0);

/** The outcome carries the SQLSTATE in `code`; the redacted line starts with it too. */
function withoutCode(line: string): string {
  return line.replace(/^[0-9A-Z]{5}: /, '');
}
