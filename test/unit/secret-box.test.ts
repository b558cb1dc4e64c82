/**
 * The secret box (AES-256-GCM with key ids) and the key's life cycle (secret-keys.ts) on a
 * real SQLite store in a temporary data directory: which key a server starts with, setting
 * a password without a server, and rotation, including a crash at each step of it.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/core/errors.js';
import { systemClock } from '../../src/pipeline/clock.js';
import { SecretBox, generateSecretKey, keyIdOf } from '../../src/service/secret-box.js';
import { encodeKey, keyFilePath, pendingKeyFilePath, readSecretKey, writeKeyFile } from '../../src/service/secret-key-file.js';
import { SecretKeyService, openSecret } from '../../src/service/secret-keys.js';
import { writeServerPidFile } from '../../src/service/server-pid-file.js';
import type { StoredProfile } from '../../src/store/metadata-store.js';
import { SqliteMetadataStore } from '../../src/store/sqlite/sqlite-metadata-store.js';

const openStores: SqliteMetadataStore[] = [];
const tempDirs: string[] = [];

afterEach(async () => {
  for (const store of openStores.splice(0)) await store.close();
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function thrown(fn: () => unknown): FerryError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(FerryError);
    return error as FerryError;
  }
  throw new Error('expected a throw');
}

async function rejection(promise: Promise<unknown>): Promise<FerryError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(FerryError);
    return error as FerryError;
  }
  throw new Error('expected the promise to reject, it resolved');
}

describe('SecretBox', () => {
  it('round-trips and records the id of its key in every value', () => {
    const key = generateSecretKey();
    const box = new SecretBox(key);
    const stored = box.encrypt('pässwörd:with:colons');
    expect(stored.split(':')[0]).toBe('v2');
    expect(box.inspect(stored)).toEqual({ keyId: keyIdOf(key), wellFormed: true });
    expect(box.keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(box.decrypt(stored)).toBe('pässwörd:with:colons');
    expect(stored).not.toContain('pässwörd');
    // A fresh nonce each time.
    expect(box.encrypt('same')).not.toBe(box.encrypt('same'));
  });

  it('key ids differ between keys and do not reveal the key', () => {
    const a = generateSecretKey();
    const b = generateSecretKey();
    expect(keyIdOf(a)).not.toBe(keyIdOf(b));
    expect(keyIdOf(a)).toBe(keyIdOf(Buffer.from(a)));
    expect(a.toString('hex')).not.toContain(keyIdOf(a));
  });

  it('refuses keys that are not 32 bytes', () => {
    expect(thrown(() => new SecretBox(randomBytes(16))).code).toBe('INVALID_ARGUMENT');
  });

  it('tells a wrong key from a damaged value', () => {
    const box = new SecretBox(generateSecretKey());
    const other = new SecretBox(generateSecretKey());
    const stored = other.encrypt('secret');

    const wrong = thrown(() => box.decrypt(stored));
    expect(wrong.code).toBe('SECRET_UNREADABLE');
    expect(wrong.recoverable).toBe(true);
    expect(wrong.details).toMatchObject({ reason: 'wrong-key', keyId: other.keyId, currentKeyId: box.keyId });

    const parts = box.encrypt('secret').split(':');
    const body = Buffer.from(parts[4] as string, 'base64');
    body[0] = (body[0] as number) ^ 0xff;
    const tampered = [...parts.slice(0, 4), body.toString('base64')].join(':');
    const damaged = thrown(() => box.decrypt(tampered));
    expect(damaged.code).toBe('SECRET_UNREADABLE');
    expect(damaged.details).toMatchObject({ reason: 'damaged', keyId: box.keyId });

    expect(thrown(() => box.decrypt('not a secret')).details['reason']).toBe('damaged');
  });

  it('still reads the v1 format (no key id) written by earlier versions', () => {
    const key = generateSecretKey();
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    const body = Buffer.concat([cipher.update('old password', 'utf8'), cipher.final()]);
    const v1 = ['v1', nonce.toString('base64'), cipher.getAuthTag().toString('base64'), body.toString('base64')].join(':');
    expect(new SecretBox(key).decrypt(v1)).toBe('old password');
    expect(new SecretBox(key).inspect(v1).keyId).toBeNull();
    const error = thrown(() => new SecretBox(generateSecretKey()).decrypt(v1));
    expect(error.code).toBe('SECRET_UNREADABLE');
    expect(error.message).toContain('another key encrypted it, or it is damaged');
  });

  it('openSecret names the profile, the cause and the fix', () => {
    const box = new SecretBox(generateSecretKey(), 'the key file /data/secret.key');
    const other = new SecretBox(generateSecretKey());
    const error = thrown(() => openSecret(box, { ownerId: 'shop-old', field: 'password', value: other.encrypt('x') }));
    expect(error.code).toBe('SECRET_UNREADABLE');
    expect(error.httpStatus).toBe(409);
    expect(error.recoverable).toBe(true);
    expect(error.message).toContain('The password of connection profile "shop-old" cannot be decrypted');
    expect(error.message).toContain(`key id ${other.keyId}`);
    expect(error.message).toContain('the key file /data/secret.key');
    expect(error.message).toContain('ferry profiles set-password shop-old --password-stdin');
    expect(error.details).toMatchObject({ profileId: 'shop-old', field: 'password', reason: 'wrong-key' });
  });
});

describe('readSecretKey', () => {
  it('reads FERRY_SECRET_KEY first, then the key file, and never creates one', () => {
    const dir = tempDir();
    expect(readSecretKey(dir, {})).toEqual({ state: 'missing', path: keyFilePath(dir) });
    expect(fs.existsSync(keyFilePath(dir))).toBe(false);
    const key = generateSecretKey();
    writeKeyFile(keyFilePath(dir), key, true);
    expect(fs.statSync(keyFilePath(dir)).mode & 0o777).toBe(0o600);
    const fromFile = readSecretKey(dir, {});
    expect(fromFile.state === 'ok' && fromFile.key.equals(key)).toBe(true);
    const envKey = generateSecretKey();
    const fromEnv = readSecretKey(dir, { FERRY_SECRET_KEY: encodeKey(envKey) });
    expect(fromEnv.state === 'ok' && fromEnv.key.equals(envKey) && fromEnv.source.kind === 'environment').toBe(true);
  });

  it('reports a damaged key and why', () => {
    const dir = tempDir();
    fs.writeFileSync(keyFilePath(dir), 'not base64!!');
    expect(readSecretKey(dir, {})).toMatchObject({ state: 'damaged', problem: 'it is not base64' });
    fs.writeFileSync(keyFilePath(dir), randomBytes(20).toString('base64'));
    expect(readSecretKey(dir, {})).toMatchObject({ state: 'damaged', problem: 'it decodes to 20 bytes, not 32' });
    fs.writeFileSync(keyFilePath(dir), '');
    expect(readSecretKey(dir, {})).toMatchObject({ state: 'damaged', problem: 'it is empty' });
  });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-keys-'));
  tempDirs.push(dir);
  return dir;
}

async function openStore(dir: string): Promise<SqliteMetadataStore> {
  const store = SqliteMetadataStore.open(path.join(dir, 'ferry.db'));
  openStores.push(store);
  await store.migrate();
  return store;
}

function profile(id: string, box: SecretBox | null, password = `pw-${id}`, clientKey: string | null = null): StoredProfile {
  return {
    id, displayName: id, engine: 'postgresql', host: '127.0.0.1', port: 5432, database: 'postgres', username: 'u',
    tlsMode: clientKey === null ? 'none' : 'server-client', connectivityMethod: 'direct', labels: {},
    encryptedPassword: box === null ? null : box.encrypt(password),
    caCertificate: clientKey === null ? null : 'CA', clientCertificate: clientKey === null ? null : 'CERT',
    encryptedClientKey: clientKey === null || box === null ? null : box.encrypt(clientKey),
    createTime: '2026-01-01T00:00:00.000Z', updateTime: '2026-01-01T00:00:00.000Z',
  };
}

function keysOf(store: SqliteMetadataStore, dir: string, env: NodeJS.ProcessEnv = {}): SecretKeyService {
  return new SecretKeyService({ store, clock: systemClock, dataDir: dir, env });
}

async function passwordOf(store: SqliteMetadataStore, box: SecretBox, id: string): Promise<string> {
  const p = await store.getProfile(id);
  return box.decrypt(p?.encryptedPassword as string);
}

describe('SecretKeyService', () => {
  it('creates a key only when the store holds no secret', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    await store.insertProfile(profile('no-secret', null));
    const opened = await keysOf(store, dir).openForServer();
    expect(opened.createdKey).toBe(true);
    expect(fs.statSync(keyFilePath(dir)).mode & 0o777).toBe(0o600);
    // The second start uses the same key.
    const again = await keysOf(store, dir).openForServer();
    expect(again.createdKey).toBe(false);
    expect(again.box.keyId).toBe(opened.box.keyId);
  });

  it('refuses to start without the key when secrets exist, naming the data directory and both ways out; the restored key starts', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    const key = generateSecretKey();
    const box = new SecretBox(key);
    await store.insertProfile(profile('src', box));
    await store.insertProfile(profile('tls', box, 'pw', 'KEY PEM'));
    const error = await rejection(keysOf(store, dir).openForServer());
    expect(error.code).toBe('FAILED_PRECONDITION');
    expect(error.message).toContain(`${dir}/secret.key does not exist`);
    expect(error.message).toContain('holds 3 encrypted secrets');
    expect(error.message).toContain('FERRY_SECRET_KEY');
    expect(error.message).toContain(`ferry profiles set-password ID --data-dir ${dir} --password-stdin`);
    expect(error.message).toContain('"src", "tls"');
    expect(error.message).toContain('the TLS client key of connection profile "tls"');
    expect(error.details).toMatchObject({ dataDir: dir, reason: 'missing', profiles: ['src', 'tls'] });
    expect(fs.existsSync(keyFilePath(dir))).toBe(false);

    writeKeyFile(keyFilePath(dir), key, true);
    const opened = await keysOf(store, dir).openForServer();
    expect(opened.box.keyId).toBe(box.keyId);
    expect(opened.census.readable).toHaveLength(3);
    // FERRY_SECRET_KEY works as well, without a file.
    fs.rmSync(keyFilePath(dir));
    expect((await keysOf(store, dir, { FERRY_SECRET_KEY: encodeKey(key) }).openForServer()).box.keyId).toBe(box.keyId);
  });

  it('refuses a damaged key file and never says to delete it', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    await store.insertProfile(profile('src', new SecretBox(generateSecretKey())));
    fs.writeFileSync(keyFilePath(dir), 'AAAA');
    const error = await rejection(keysOf(store, dir).openForServer());
    expect(error.message).toContain('is damaged: it decodes to 3 bytes, not 32');
    expect(error.message).toContain('Do not delete the key file');
    expect(error.message).toContain('set-password ID --data-dir');
    expect(error.message).not.toMatch(/delete the key file to/i);
    expect(fs.readFileSync(keyFilePath(dir), 'utf8')).toBe('AAAA');
  });

  it('refuses a key that encrypted none of the secrets, naming the right key id; starts when some are readable', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    const right = new SecretBox(generateSecretKey());
    await store.insertProfile(profile('a', right));
    await store.insertProfile(profile('b', right));
    const wrongKey = generateSecretKey();
    writeKeyFile(keyFilePath(dir), wrongKey, true);
    const error = await rejection(keysOf(store, dir).openForServer());
    expect(error.details['reason']).toBe('wrong-key');
    expect(error.message).toContain(`key id ${keyIdOf(wrongKey)}`);
    expect(error.message).toContain(`the key whose id is ${right.keyId}`);

    // One password re-entered with the present key: the server starts, and knows which secret is still unreadable.
    await store.updateProfile({ ...profile('a', new SecretBox(wrongKey)) });
    const opened = await keysOf(store, dir).openForServer();
    expect(opened.census.readable.map((s) => s.ownerId)).toEqual(['a']);
    expect(opened.census.wrongKey.map((s) => s.ownerId)).toEqual(['b']);
    expect(opened.census.otherKeyIds).toEqual([right.keyId]);
  });

  it('set-password on the data directory makes a new key when it is lost, moves a damaged one aside, and lists what stays unreadable', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    const lost = new SecretBox(generateSecretKey());
    await store.insertProfile(profile('a', lost));
    await store.insertProfile(profile('b', lost));
    fs.writeFileSync(keyFilePath(dir), 'garbage!');
    const result = await keysOf(store, dir).setPassword('a', 'new-a');
    expect(result.createdKey).toBe(true);
    expect(result.damagedKeyMovedTo).not.toBeNull();
    expect(fs.readFileSync(result.damagedKeyMovedTo as string, 'utf8')).toBe('garbage!');
    expect(result.stillUnreadable).toEqual([
      { profileId: 'b', field: 'password', description: 'the password of connection profile "b"', command: `ferry profiles set-password b --data-dir ${dir} --password-stdin` },
    ]);
    const load = readSecretKey(dir, {});
    expect(load.state).toBe('ok');
    const box = new SecretBox(load.state === 'ok' ? load.key : Buffer.alloc(0));
    expect(result.keyId).toBe(box.keyId);
    expect(await passwordOf(store, box, 'a')).toBe('new-a');

    // The server starts now (a secret is readable); the second one makes the store whole.
    expect((await keysOf(store, dir).openForServer()).census.wrongKey).toHaveLength(1);
    const second = await keysOf(store, dir).setPassword('b', 'new-b');
    expect(second.createdKey).toBe(false);
    expect(second.stillUnreadable).toEqual([]);

    expect((await rejection(keysOf(store, dir).setPassword('nope', 'x'))).code).toBe('NOT_FOUND');
  });

  it('set-password and rotate refuse while a server runs on the data directory', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    await store.insertProfile(profile('a', null));
    // The parent process stands in for a running server: a live pid that is not this one.
    writeServerPidFile(dir, process.ppid);
    const refused = await rejection(keysOf(store, dir).setPassword('a', 'x'));
    expect(refused.code).toBe('FAILED_PRECONDITION');
    expect(refused.message).toContain(`a Ferry server (pid ${process.ppid}) is running on ${dir}`);
    expect(refused.message).toContain('without --data-dir');
    expect((await rejection(keysOf(store, dir).rotate(() => undefined))).message).toContain('stop it, rotate');
    // A pid file of a process that is gone is ignored.
    writeServerPidFile(dir, 2 ** 22 + 12345);
    await keysOf(store, dir).setPassword('a', 'x');
  });

  it('rotates every secret to a new key file; the old key no longer decrypts them', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    const oldKey = generateSecretKey();
    writeKeyFile(keyFilePath(dir), oldKey, true);
    const old = new SecretBox(oldKey);
    await store.insertProfile(profile('a', old, 'pa'));
    await store.insertProfile(profile('b', old, 'pb', 'client key'));
    const result = await keysOf(store, dir).rotate(() => {
      throw new Error('the new key is shown only with FERRY_SECRET_KEY');
    });
    expect(result).toMatchObject({ oldKeyId: old.keyId, secretsReencrypted: 3, keyFile: keyFilePath(dir) });
    expect(fs.existsSync(pendingKeyFilePath(dir))).toBe(false);
    expect(fs.statSync(keyFilePath(dir)).mode & 0o777).toBe(0o600);
    const load = readSecretKey(dir, {});
    const fresh = new SecretBox(load.state === 'ok' ? load.key : Buffer.alloc(0));
    expect(fresh.keyId).toBe(result.newKeyId);
    expect(fresh.keyId).not.toBe(old.keyId);
    expect(await passwordOf(store, fresh, 'a')).toBe('pa');
    expect(fresh.decrypt((await store.getProfile('b'))?.encryptedClientKey as string)).toBe('client key');
    for (const secret of await store.listSecrets()) expect(old.canDecrypt(secret.value)).toBe(false);
  });

  it('with FERRY_SECRET_KEY, rotation hands over the new key before the store changes and writes no file', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    const oldKey = generateSecretKey();
    await store.insertProfile(profile('a', new SecretBox(oldKey), 'pa'));
    let shown: string | null = null;
    // The store as it is when the key is handed over (SQLite answers at the call).
    let storeWhenShown: ReturnType<typeof store.listSecrets> | null = null;
    const before = (await store.listSecrets()).map((s) => s.value);
    await keysOf(store, dir, { FERRY_SECRET_KEY: encodeKey(oldKey) }).rotate((encoded) => {
      shown = encoded;
      storeWhenShown = store.listSecrets();
    });
    expect((await storeWhenShown!).map((s) => s.value)).toEqual(before);
    expect((await store.listSecrets()).map((s) => s.value)).not.toEqual(before);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('secret'))).toEqual([]);
    const newBox = new SecretBox(Buffer.from(shown as unknown as string, 'base64'));
    expect(await passwordOf(store, newBox, 'a')).toBe('pa');
  });

  it('refuses to rotate while a secret is unreadable, naming it and the fix', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    const key = generateSecretKey();
    writeKeyFile(keyFilePath(dir), key, true);
    await store.insertProfile(profile('ok', new SecretBox(key)));
    await store.insertProfile(profile('lost', new SecretBox(generateSecretKey())));
    const before = await store.listSecrets();
    const error = await rejection(keysOf(store, dir).rotate(() => undefined));
    expect(error.message).toContain('the password of connection profile "lost"');
    expect(error.message).toContain(`ferry profiles set-password lost --data-dir ${dir} --password-stdin`);
    expect(await store.listSecrets()).toEqual(before);
    expect(readSecretKey(dir, {})).toMatchObject({ state: 'ok', key });
  });

  it('a rotation interrupted after the store commit is finished at the next start; one interrupted before it is forgotten', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    const oldKey = generateSecretKey();
    writeKeyFile(keyFilePath(dir), oldKey, true);
    const old = new SecretBox(oldKey);
    await store.insertProfile(profile('a', old, 'pa'));

    // Crash after the new key was written, before the store changed: the old key stays.
    const abandoned = generateSecretKey();
    writeKeyFile(pendingKeyFilePath(dir), abandoned, false);
    const first = await keysOf(store, dir).openForServer();
    expect(first.finishedRotation).toBe(false);
    expect(first.box.keyId).toBe(old.keyId);
    expect(fs.existsSync(pendingKeyFilePath(dir))).toBe(false);

    // Crash after the store transaction, before the rename: the new key takes over.
    const next = generateSecretKey();
    const nextBox = new SecretBox(next);
    writeKeyFile(pendingKeyFilePath(dir), next, false);
    const [secret] = await store.listSecrets();
    await store.replaceSecrets([{ ...secret!, previous: secret!.value, value: nextBox.encrypt(old.decrypt(secret!.value)) }]);
    const second = await keysOf(store, dir).openForServer();
    expect(second.finishedRotation).toBe(true);
    expect(second.box.keyId).toBe(nextBox.keyId);
    expect(fs.existsSync(pendingKeyFilePath(dir))).toBe(false);
    expect(await passwordOf(store, second.box, 'a')).toBe('pa');
  });

  it('replaceSecrets is all or nothing', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    const box = new SecretBox(generateSecretKey());
    await store.insertProfile(profile('a', box));
    await store.insertProfile(profile('b', box));
    const before = await store.listSecrets();
    expect(before.map((s) => `${s.ownerId}.${s.field}`)).toEqual(['a.password', 'b.password']);
    const error = await rejection(store.replaceSecrets([
      { ...before[0]!, previous: before[0]!.value, value: 'new-a' },
      { ...before[1]!, previous: 'not what is stored', value: 'new-b' },
    ]));
    expect(error.code).toBe('FAILED_PRECONDITION');
    expect(await store.listSecrets()).toEqual(before);
  });
});
