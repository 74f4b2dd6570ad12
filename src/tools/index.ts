/**
 * `media-storage/tools`: the operations behind the `media-storage` CLI (sync, audit, doctor), for
 * scripts and jobs that run them from code, with the formatters the CLI prints through.
 *
 * @packageDocumentation
 */
export { syncStorages, type SyncOptions, type SyncReport, type SyncProgress, type SyncFailure } from '../cli/sync.js';
export { auditKeys, formatAudit, parseKeyList, type AuditOptions, type AuditReport, type AuditEntry, type AuditStatus } from '../cli/audit.js';
export { runDoctor, formatDoctor, type DoctorOptions, type DoctorReport, type DoctorCheck } from '../cli/doctor.js';
