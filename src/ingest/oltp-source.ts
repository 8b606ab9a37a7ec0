/** The interface lives in adapters/ so that its PostgreSQL implementation can sit beside the driver. */
export type { CopyOut, OltpReadSession, OltpSource } from '../adapters/oltp-source.ts';
