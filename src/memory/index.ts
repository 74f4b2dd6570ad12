export { MemoryStorage, type MemoryStorageOptions } from './storage.js';
