import type { PostgresCapture } from '../artifacts/manifest.ts';
import type { OltpSource } from './oltp-source.ts';

/** One OLTP connection per `url_env`, opened on first use and shared by every table and practice reading it. */
export class OltpConnections {
  private readonly byUrlEnv = new Map<string, Promise<OltpSource>>();

  constructor(private readonly open: (capture: PostgresCapture) => Promise<OltpSource>) {}

  get(capture: PostgresCapture): Promise<OltpSource> {
    let p = this.byUrlEnv.get(capture.url_env);
    if (!p) {
      p = this.open(capture);
      this.byUrlEnv.set(capture.url_env, p);
    }
    return p;
  }

  /** Closes every connection that opened; one that failed to open or to close is not an error here. */
  async close(): Promise<void> {
    for (const p of this.byUrlEnv.values()) await (await p.catch(() => undefined))?.close().catch(() => undefined);
  }
}
