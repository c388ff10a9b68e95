export { startMockProvider } from './mock-provider.js';
export type { MockProvider, MockProviderOptions } from './mock-provider.js';
export { openaiHandlers, anthropicHandlers } from './msw.js';
export type { MockHandlerOptions } from './msw.js';
export { MockRecorder } from './recorder.js';
export type { RecordedRequest, MockEnd } from './recorder.js';
export { openaiChatWire, openaiResponsesWire } from './openai-wire.js';
export { anthropicMessagesWire } from './anthropic-wire.js';
export { wireToResponse, wireToStream, createRandom } from './wire-stream.js';
export type { WireStreamOptions } from './wire-stream.js';
export { DEFAULT_MOCK_TOKENS } from './script.js';
export type {
  MockScript,
  MockScriptInput,
  MockRequest,
  MockFault,
  MockToolCall,
  WireFrame,
  WireResponse,
} from './script.js';
export { openaiScenarios } from './openai-scenarios.js';
export type { OpenAIScenarioName } from './openai-scenarios.js';
export { anthropicScenarios } from './anthropic-scenarios.js';
export type { AnthropicScenarioName } from './anthropic-scenarios.js';
export type { AnthropicMockBlock, AnthropicMockMessage } from './anthropic-wire.js';
export { mistralHandlers } from './msw.js';
export { mistralChatWire } from './mistral-wire.js';
export type { MistralWireWriter } from './mistral-wire.js';
export { mistralScenarios } from './mistral-scenarios.js';
export type { MistralScenarioName } from './mistral-scenarios.js';
export { googleHandlers } from './msw.js';
export { googleGenerateContentWire } from './google-wire.js';
export type { GoogleMockAnswer } from './google-wire.js';
export { googleScenarios } from './google-scenarios.js';
export type { GoogleScenarioName } from './google-scenarios.js';
export { bedrockHandlers } from './msw.js';
export { bedrockConverseWire, bedrockEventFrame } from './bedrock-wire.js';
