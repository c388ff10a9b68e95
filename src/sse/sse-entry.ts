export { encodeSSEFrame, sseHeaders } from './encoder.js';
export type { SSEDonePayload, SSEErrorPayload, SSEFrame } from './encoder.js';
