/**
 * The life cycle of the key that encrypts secrets at rest: which key a server may start
 * with, setting a password on the data directory when the server cannot start, and key
 * rotation. The rules:
 * - A key is created only when the store holds no secret. A missing, damaged or wrong key
 *   with secrets in the store refuses the start, saying how to restore the key or re-enter
 *   the passwords; nothing is ever deleted.
 * - Every secret records the id of the key that encrypted it (secret-box.ts), so "wrong key"
 *   and "damaged secret" are told apart, per secret.
 * - Rotation writes the new key beside the old one, re-encrypts every secret in one store
 *   transaction, then renames the new key over the old. A crash at any point loses nothing:
 *   the next opening finishes or forgets the rotation by looking at which key the store's
 *   secrets carry.
 */
import { existsSync } from 'node:fs';
import { FerryError } from '../core/errors.js';
import type { Clock } from '../pipeline/clock.js';
import type { MetadataStore, SecretField, StoredSecret } from '../store/metadata-store.js';
import { SecretBox, generateSecretKey, keyIdOf } from './secret-box.js';
import {
  KEY_ENV,
  describeKeySource,
  encodeKey,
  keyFilePath,
  pendingKeyFilePath,
  readKeyFile,
  readSecretKey,
  removeFile,
  replaceFile,
  writeKeyFile,
  type KeyLoad,
} from './secret-key-file.js';
import { runningServerPid } from './server-pid-file.js';

/** How each kind of secret is named and re-entered. A new kind of secret adds an entry (the compiler asks for it). */
const SECRET_FIELDS: Record<SecretField, { label: string; reenter(profileId: string, dataDir: string | null): string }> = {
  password: {
    label: 'password',
    reenter: (id, dataDir) => `ferry profiles set-password ${id}${dataDir === null ? '' : ` --data-dir ${dataDir}`} --password-stdin`,
  },
  clientKey: {
    label: 'TLS client key',
    reenter: (id) => `ferry profiles update ${id} --tls-mode server-client --ca-certificate FILE --client-certificate FILE --client-key FILE`,
  },
};

/** 'the password of connection profile "shop-old"' */
export function describeSecret(secret: Pick<StoredSecret, 'ownerId' | 'field'>): string {
  return `the ${SECRET_FIELDS[secret.field].label} of connection profile "${secret.ownerId}"`;
}

/** The command that re-enters the secret: through the API (dataDir null) or on the data directory. */
export function reenterCommand(secret: Pick<StoredSecret, 'ownerId' | 'field'>, dataDir: string | null): string {
  return SECRET_FIELDS[secret.field].reenter(secret.ownerId, dataDir);
}

/** The store's secrets sorted by what the key can do with them. */
export interface SecretCensus {
  total: number;
  readable: StoredSecret[];
  /** Encrypted with another key (or, for the old v1 format, not decryptable with this one). */
  wrongKey: StoredSecret[];
  /** Encrypted with this key but not decryptable, or not in a known format. */
  damaged: StoredSecret[];
  /** Ids of the other keys that encrypted secrets, most used first. */
  otherKeyIds: string[];
}

export function takeCensus(box: SecretBox, secrets: StoredSecret[]): SecretCensus {
  const census: SecretCensus = { total: secrets.length, readable: [], wrongKey: [], damaged: [], otherKeyIds: [] };
  const otherIds = new Map<string, number>();
  for (const secret of secrets) {
    try {
      box.decrypt(secret.value);
      census.readable.push(secret);
    } catch (error) {
      const reason = error instanceof FerryError ? error.details['reason'] : 'damaged';
      if (reason === 'wrong-key') {
        census.wrongKey.push(secret);
        const id = box.inspect(secret.value).keyId;
        if (id !== null) otherIds.set(id, (otherIds.get(id) ?? 0) + 1);
      } else {
        census.damaged.push(secret);
      }
    }
  }
  census.otherKeyIds = [...otherIds.entries()].sort((a, b) => b[1] - a[1]).map(([id]) => id);
  return census;
}

/**
 * Decrypts one secret of a profile; a secret that cannot be read becomes SECRET_UNREADABLE
 * (recoverable) naming the profile, the cause and the fix through the running server.
 */
export function openSecret(box: SecretBox, secret: Pick<StoredSecret, 'ownerId' | 'field' | 'value'>): string {
  try {
    return box.decrypt(secret.value);
  } catch (error) {
    if (!(error instanceof FerryError) || error.code !== 'SECRET_UNREADABLE') throw error;
    const keyId = error.details['keyId'];
    const what = describeSecret(secret);
    const reenter = `re-enter it: \`${reenterCommand(secret, null)}\``;
    const message = error.details['reason'] === 'wrong-key'
      ? `${capitalize(what)} cannot be decrypted: ${typeof keyId === 'string' ? `it was encrypted with another secret key (key id ${keyId})` : 'another secret key encrypted it, or it is damaged'}, not the one this server uses (key id ${box.keyId}, from ${box.origin}). Restart Ferry with ${typeof keyId === 'string' ? `the key whose id is ${keyId}` : 'the key that encrypted it'} (restore the secret.key file or set ${KEY_ENV}), or ${reenter}. Jobs that use the profile resume by themselves once it can be read.`
      : `${capitalize(what)} cannot be decrypted: the stored value is damaged (the current key, id ${box.keyId}, encrypted it but it does not decrypt). Re-enter it: \`${reenterCommand(secret, null)}\`. Jobs that use the profile resume by themselves once it can be read.`;
    return throwUnreadable(message, secret, error);
  }
}

function throwUnreadable(message: string, secret: Pick<StoredSecret, 'ownerId' | 'field'>, cause: FerryError): never {
  throw new FerryError('SECRET_UNREADABLE', message, {
    recoverable: true,
    details: { ...cause.details, profileId: secret.ownerId, field: secret.field },
    cause,
  });
}

export interface SecretKeyServiceDeps {
  store: MetadataStore;
  clock: Clock;
  /** Absolute path of the data directory (holds secret.key). */
  dataDir: string;
  /** Where FERRY_SECRET_KEY is read. */
  env: NodeJS.ProcessEnv;
}

export interface ServerKey {
  box: SecretBox;
  /** True when this start created the key (the store held no secret). */
  createdKey: boolean;
  /** True when this start finished a key rotation that a crash interrupted. */
  finishedRotation: boolean;
  census: SecretCensus;
}

export interface SetPasswordResult {
  profileId: string;
  keyId: string;
  /** True when no usable key existed: a new one was made. */
  createdKey: boolean;
  /** Where a damaged key file was moved, when it was. */
  damagedKeyMovedTo: string | null;
  /** Secrets still unreadable with the key (their profiles need their secrets re-entered too). */
  stillUnreadable: Array<{ profileId: string; field: SecretField; description: string; command: string }>;
}

export interface RotateResult {
  oldKeyId: string;
  newKeyId: string;
  secretsReencrypted: number;
  /** The key file now holding the new key; null with FERRY_SECRET_KEY (the caller shows the key). */
  keyFile: string | null;
}

export class SecretKeyService {
  readonly #deps: SecretKeyServiceDeps;

  constructor(deps: SecretKeyServiceDeps) {
    this.#deps = deps;
  }

  /**
   * The key `ferry serve` runs with. Creates one only when the store holds no secret;
   * otherwise a missing, damaged or wrong key (one that encrypted none of the secrets)
   * rejects with FAILED_PRECONDITION naming the data directory and both ways out.
   */
  async openForServer(): Promise<ServerKey> {
    const finishedRotation = (await this.#finishPendingRotation()) === 'completed';
    const load = readSecretKey(this.#deps.dataDir, this.#deps.env);
    const secrets = await this.#deps.store.listSecrets();
    if (load.state === 'missing') {
      if (secrets.length > 0) throw this.#refusal(load, secrets, null);
      const key = generateSecretKey();
      writeKeyFile(load.path, key, true);
      const box = new SecretBox(key, describeKeySource({ kind: 'file', path: load.path }));
      return { box, createdKey: true, finishedRotation, census: takeCensus(box, []) };
    }
    if (load.state === 'damaged') throw this.#refusal(load, secrets, null);
    const box = new SecretBox(load.key, describeKeySource(load.source));
    const census = takeCensus(box, secrets);
    if (census.total > 0 && census.wrongKey.length === census.total) throw this.#refusal(load, secrets, census);
    return { box, createdKey: false, finishedRotation, census };
  }

  /**
   * Sets a profile's password on the data directory, for when the server cannot start. With
   * no usable key, makes a new one (a damaged key file is moved aside, never deleted): the
   * secrets of the old key stay unreadable until their profiles get new ones too.
   * Refused while a server runs on the data directory: then its API does it.
   */
  async setPassword(profileId: string, password: string): Promise<SetPasswordResult> {
    this.#refuseWhileServing('set a password on the data directory', `set it through the server instead: \`ferry profiles set-password ${profileId} --password-stdin\` (without --data-dir)`);
    if (password.length > 1024) throw new FerryError('INVALID_ARGUMENT', 'password: at most 1024 characters.');
    const profile = await this.#deps.store.getProfile(profileId);
    if (profile === null) {
      throw new FerryError('NOT_FOUND', `Connection profile "${profileId}" does not exist in ${this.#deps.dataDir}; the profiles with secrets are: ${(await this.#profilesWithSecrets()).join(', ') || 'none'}.`, { details: { profileId } });
    }
    await this.#finishPendingRotation();
    const load = readSecretKey(this.#deps.dataDir, this.#deps.env);
    let key: Buffer;
    let createdKey = false;
    let damagedKeyMovedTo: string | null = null;
    if (load.state === 'ok') {
      key = load.key;
    } else if (load.state === 'damaged' && load.source.kind === 'environment') {
      throw new FerryError('FAILED_PRECONDITION', `${KEY_ENV} is not a usable key: ${load.problem}. Set it to the key (32 random bytes in base64, 44 characters), or unset it to use ${keyFilePath(this.#deps.dataDir)}.`);
    } else {
      const path = keyFilePath(this.#deps.dataDir);
      if (load.state === 'damaged') {
        damagedKeyMovedTo = `${path}.damaged-${this.#deps.clock.now().replace(/[:.]/g, '-')}`;
        replaceFile(path, damagedKeyMovedTo);
      }
      key = generateSecretKey();
      writeKeyFile(path, key, true);
      createdKey = true;
    }
    const box = new SecretBox(key, load.state === 'ok' ? describeKeySource(load.source) : describeKeySource({ kind: 'file', path: keyFilePath(this.#deps.dataDir) }));
    await this.#deps.store.updateProfile({ ...profile, encryptedPassword: box.encrypt(password), updateTime: this.#deps.clock.now() });
    const census = takeCensus(box, await this.#deps.store.listSecrets());
    return {
      profileId,
      keyId: box.keyId,
      createdKey,
      damagedKeyMovedTo,
      stillUnreadable: [...census.wrongKey, ...census.damaged].map((s) => ({
        profileId: s.ownerId, field: s.field, description: describeSecret(s), command: reenterCommand(s, this.#deps.dataDir),
      })),
    };
  }

  /**
   * Re-encrypts every secret with a new key, atomically. With FERRY_SECRET_KEY,
   * `onNewKey` receives the new key (base64) before the store changes, and no file is
   * written: the caller must show it. Refused while a server runs on the data directory,
   * and while any secret is unreadable (re-enter those first).
   */
  async rotate(onNewKey: (encodedKey: string) => void): Promise<RotateResult> {
    this.#refuseWhileServing('rotate the secret key', 'stop it, rotate, and start it again');
    await this.#finishPendingRotation();
    const load = readSecretKey(this.#deps.dataDir, this.#deps.env);
    const secrets = await this.#deps.store.listSecrets();
    if (load.state === 'missing') {
      if (secrets.length > 0) throw this.#refusal(load, secrets, null);
      throw new FerryError('FAILED_PRECONDITION', `There is no secret key to rotate in ${this.#deps.dataDir} (and ${KEY_ENV} is not set); \`ferry serve\` creates one on its first start.`);
    }
    if (load.state === 'damaged') throw this.#refusal(load, secrets, null);
    const oldBox = new SecretBox(load.key, describeKeySource(load.source));
    const census = takeCensus(oldBox, secrets);
    const unreadable = [...census.wrongKey, ...census.damaged];
    if (unreadable.length > 0) {
      throw new FerryError(
        'FAILED_PRECONDITION',
        `Cannot rotate the secret key: ${unreadable.length} stored ${unreadable.length === 1 ? 'secret does' : 'secrets do'} not decrypt with the current key (key id ${oldBox.keyId}, from ${oldBox.origin}): ${unreadable.map(describeSecret).join(', ')}. Re-enter ${unreadable.length === 1 ? 'it' : 'them'} first (${unique(unreadable.map((s) => `\`${reenterCommand(s, this.#deps.dataDir)}\``)).join('; ')}), then rotate.`,
        { details: { unreadable: unreadable.map((s) => ({ profileId: s.ownerId, field: s.field })) } },
      );
    }
    const newKey = generateSecretKey();
    const newBox = new SecretBox(newKey);
    const replacements = secrets.map((s) => ({ ...s, previous: s.value, value: newBox.encrypt(oldBox.decrypt(s.value)) }));
    const result = { oldKeyId: oldBox.keyId, newKeyId: newBox.keyId, secretsReencrypted: replacements.length };
    if (load.source.kind === 'environment') {
      // Shown before the store changes: a crash after the commit must not lose the only copy.
      onNewKey(encodeKey(newKey));
      await this.#deps.store.replaceSecrets(replacements);
      return { ...result, keyFile: null };
    }
    const pending = pendingKeyFilePath(this.#deps.dataDir);
    writeKeyFile(pending, newKey, false);
    try {
      await this.#deps.store.replaceSecrets(replacements);
    } catch (error) {
      removeFile(pending);
      throw error;
    }
    replaceFile(pending, load.source.path);
    return { ...result, keyFile: load.source.path };
  }

  /**
   * A rotation interrupted between writing the new key and renaming it: when the store's
   * secrets carry the new key, the rename is done now; otherwise the new key is forgotten.
   */
  async #finishPendingRotation(): Promise<'completed' | 'discarded' | null> {
    const pendingPath = pendingKeyFilePath(this.#deps.dataDir);
    const fromEnv = this.#deps.env[KEY_ENV];
    if ((fromEnv !== undefined && fromEnv !== '') || !existsSync(pendingPath)) return null;
    const pending = readKeyFile(pendingPath);
    if (pending !== null) {
      const id = keyIdOf(pending);
      const box = new SecretBox(pending);
      if ((await this.#deps.store.listSecrets()).some((s) => box.inspect(s.value).keyId === id)) {
        replaceFile(pendingPath, keyFilePath(this.#deps.dataDir));
        return 'completed';
      }
    }
    removeFile(pendingPath);
    return 'discarded';
  }

  #refuseWhileServing(what: string, instead: string): void {
    const pid = runningServerPid(this.#deps.dataDir);
    if (pid !== null) {
      throw new FerryError('FAILED_PRECONDITION', `Cannot ${what}: a Ferry server (pid ${pid}) is running on ${this.#deps.dataDir}; ${instead}.`, { details: { pid } });
    }
  }

  async #profilesWithSecrets(): Promise<string[]> {
    return unique((await this.#deps.store.listSecrets()).map((s) => s.ownerId));
  }

  /** Why the server does not start with this key, and the two ways out. */
  #refusal(load: KeyLoad, secrets: StoredSecret[], census: SecretCensus | null): FerryError {
    const { dataDir } = this.#deps;
    const keyFile = keyFilePath(dataDir);
    const held = `the metadata store in ${dataDir} holds ${secrets.length} encrypted ${secrets.length === 1 ? 'secret' : 'secrets'} (${listSome(secrets.map(describeSecret))})`;
    let problem: string;
    let restore: string;
    if (load.state === 'missing') {
      problem = `The secret key is missing: ${keyFile} does not exist and ${KEY_ENV} is not set, but ${held}. Ferry does not make a new key, which would leave them unreadable.`;
      restore = `put the key back: copy your backup of secret.key to ${keyFile} (mode 0600), or set ${KEY_ENV} to the key`;
    } else if (load.state === 'damaged') {
      const where = describeKeySource(load.source);
      if (secrets.length === 0) {
        return new FerryError('FAILED_PRECONDITION', `The secret key in ${where} is damaged: ${load.problem} (a key is 32 random bytes in base64, 44 characters). No stored secret depends on it: ${load.source.kind === 'environment' ? `unset ${KEY_ENV} or set it to a valid key` : `move it aside (mv ${keyFile} ${keyFile}.damaged)`} and start Ferry again; it then makes a new key.`, {
          details: { dataDir, reason: 'damaged' },
        });
      }
      problem = `The secret key in ${where} is damaged: ${load.problem} (a key is 32 random bytes in base64, 44 characters), and ${held}. Do not delete the key file.`;
      restore = load.source.kind === 'environment'
        ? `set ${KEY_ENV} to the right key (or unset it to use ${keyFile})`
        : `replace ${keyFile} with your backup of it (mode 0600), or set ${KEY_ENV} to the key`;
    } else {
      const ids = census?.otherKeyIds ?? [];
      problem = `The secret key from ${describeKeySource(load.source)} (key id ${keyIdOf(load.key)}) is not the key that encrypted the secrets: ${held}, encrypted with ${ids.length === 0 ? 'another key' : `the key whose id is ${ids.join(' or ')}`}.`;
      restore = load.source.kind === 'environment'
        ? `set ${KEY_ENV} to that key (or unset it to use ${keyFile})`
        : `use that key: restore its secret.key to ${keyFile} (mode 0600), or set ${KEY_ENV} to it`;
    }
    const profiles = unique(secrets.filter((s) => s.field === 'password').map((s) => s.ownerId));
    const others = secrets.filter((s) => s.field !== 'password');
    const reenter = profiles.length === 0
      ? ''
      : ` Or, if the key is lost for good, re-enter each password on the data directory: \`ferry profiles set-password ID --data-dir ${dataDir} --password-stdin\` for ${listSome(profiles.map((p) => `"${p}"`))}; the first one makes a new key, and the secrets of the lost key are discarded as their profiles get new ones${others.length > 0 ? ` (re-enter ${listSome(others.map(describeSecret))} once the server runs)` : ''}. Then start Ferry again.`;
    return new FerryError('FAILED_PRECONDITION', `${problem} Either ${restore}, then start Ferry again.${reenter}`, {
      details: { dataDir, reason: load.state === 'ok' ? 'wrong-key' : load.state, profiles: unique(secrets.map((s) => s.ownerId)) },
    });
  }
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

function listSome(items: string[], max = 10): string {
  const shown = items.slice(0, max).join(', ');
  return items.length > max ? `${shown} and ${items.length - max} more` : shown;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
