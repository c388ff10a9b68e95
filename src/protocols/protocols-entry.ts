export type { ProtocolName } from './protocol.js';
export { readRunAgentInput } from './ag-ui-input.js';
export type { AgUIMessage, AgUIRole, AgUITool, AgUIToolCall, ReadRunAgentInputOptions, RunAgentInput } from './ag-ui-input.js';
export { readChatCompletionRequest } from './openai-request.js';
export type {
  ChatCompletionRequest,
  ChatCompletionRequestMessage,
  ChatCompletionRequestTool,
  ReadChatCompletionRequestOptions,
} from './openai-request.js';
// Defined with the core errors (one class per error across every entry); exported here, where it is thrown.
export { InvalidRequestError, isInvalidRequestError } from '../core/errors.js';
