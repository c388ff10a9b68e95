import { memoryStore } from 'tokenrelay/relay';
import { describeStoreConformance } from './store-conformance.js';

describeStoreConformance('memoryStore', () => memoryStore());
