/**
 * Where the key that encrypts secrets lives: FERRY_SECRET_KEY (base64), or the file
 * `secret.key` (base64, mode 0600) in the data directory. Reading never creates a key; the
 * callers decide (secret-keys.ts). Writes are atomic: a new key is written and synced under
 * another name, then renamed over the old one.
 */
import { chmodSync, closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SECRET_KEY_BYTES } from './secret-box.js';

export const KEY_FILE_NAME = 'secret.key';
/** A rotation's new key, written before the store is re-encrypted and renamed over the key file after. */
export const PENDING_KEY_FILE_NAME = 'secret.key.new';
export const KEY_ENV = 'FERRY_SECRET_KEY';

export type KeySource = { kind: 'environment' } | { kind: 'file'; path: string };

export type KeyLoad =
  | { state: 'ok'; key: Buffer; source: KeySource }
  | { state: 'missing'; path: string }
  | { state: 'damaged'; source: KeySource; problem: string };

export function keyFilePath(dataDir: string): string {
  return join(dataDir, KEY_FILE_NAME);
}

export function pendingKeyFilePath(dataDir: string): string {
  return join(dataDir, PENDING_KEY_FILE_NAME);
}

/** "the key file /var/lib/ferry/secret.key" or "FERRY_SECRET_KEY". */
export function describeKeySource(source: KeySource): string {
  return source.kind === 'environment' ? KEY_ENV : `the key file ${source.path}`;
}

/** The key from FERRY_SECRET_KEY when set, else from the data directory's key file. Never creates one. */
export function readSecretKey(dataDir: string, env: NodeJS.ProcessEnv): KeyLoad {
  const fromEnv = env[KEY_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return parseKey(fromEnv, { kind: 'environment' });
  const path = keyFilePath(dataDir);
  if (!existsSync(path)) return { state: 'missing', path };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return { state: 'damaged', source: { kind: 'file', path }, problem: `it cannot be read (${(error as Error).message})` };
  }
  chmodSync(path, 0o600);
  return parseKey(text, { kind: 'file', path });
}

/** Reads a key file that is not the current one (a rotation's pending key); null when absent or not a key. */
export function readKeyFile(path: string): Buffer | null {
  if (!existsSync(path)) return null;
  const load = parseKey(readFileSync(path, 'utf8'), { kind: 'file', path });
  return load.state === 'ok' ? load.key : null;
}

export function encodeKey(key: Buffer): string {
  return key.toString('base64');
}

function parseKey(text: string, source: KeySource): KeyLoad {
  const trimmed = text.trim();
  if (trimmed === '') return { state: 'damaged', source, problem: 'it is empty' };
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) return { state: 'damaged', source, problem: 'it is not base64' };
  const key = Buffer.from(trimmed, 'base64');
  if (key.length !== SECRET_KEY_BYTES) {
    return { state: 'damaged', source, problem: `it decodes to ${key.length} bytes, not ${SECRET_KEY_BYTES}` };
  }
  return { state: 'ok', key, source };
}

/** Writes `key` to `path` (mode 0600) and syncs it; refuses to overwrite when `exclusive`. */
export function writeKeyFile(path: string, key: Buffer, exclusive: boolean): void {
  const fd = openSync(path, exclusive ? 'wx' : 'w', 0o600);
  try {
    writeSync(fd, `${encodeKey(key)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(path, 0o600);
  syncDirectory(dirname(path));
}

/** Renames `from` over `to` (atomic on one file system) and syncs the directory, so the rename survives a crash. */
export function replaceFile(from: string, to: string): void {
  renameSync(from, to);
  syncDirectory(dirname(to));
}

export function removeFile(path: string): void {
  rmSync(path, { force: true });
  syncDirectory(dirname(path));
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
