/** The interface lives in adapters/ so that its PostgreSQL implementation can sit beside the driver. */
export { CAPTURE_APPLICATION_NAME, type CopyOut, type OltpReadSession, type OltpSource } from '../adapters/oltp-source.ts';
