import { memoryStore } from 'tokenrelay';
import { describeStoreConformance } from './store-conformance.js';

describeStoreConformance('memoryStore', () => memoryStore());
