/**
 * Encrypts secrets (database passwords, client keys) before they reach the metadata store:
 * AES-256-GCM with a random 96-bit nonce per value. The stored form is
 * "v1:<nonce b64>:<tag b64>:<ciphertext b64>".
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { FerryError } from '../core/errors.js';

export class SecretBox {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) {
      throw new FerryError('INVALID_ARGUMENT', `The secret key must be 32 bytes; got ${key.length}. Set FERRY_SECRET_KEY to 32 random bytes in base64, or delete the key file to let Ferry create one.`);
    }
    this.#key = key;
  }

  encrypt(plaintext: string): string {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', nonce.toString('base64'), cipher.getAuthTag().toString('base64'), body.toString('base64')].join(':');
  }

  decrypt(stored: string): string {
    const [version, nonce, tag, body] = stored.split(':');
    if (version !== 'v1' || nonce === undefined || tag === undefined || body === undefined) {
      throw new FerryError('INTERNAL', 'A stored secret is not in a format this Ferry reads; re-enter the password with `ferry profiles update`.');
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(nonce, 'base64'));
      decipher.setAuthTag(Buffer.from(tag, 'base64'));
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64')), decipher.final()]).toString('utf8');
    } catch (cause) {
      throw new FerryError('INTERNAL', 'A stored secret cannot be decrypted with the current key (was the key file replaced or FERRY_SECRET_KEY changed?). Restore the key, or re-enter the password with `ferry profiles update`.', { cause });
    }
  }
}
