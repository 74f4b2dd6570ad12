export { LocalStorage, type LocalStorageOptions } from './storage.js';
export type { LocalFileSystem } from './fs.js';
export type { MediaRequestHandler } from '../core/http-handler.js';
