/**
 * Encrypts secrets (database passwords, client keys) before they reach the metadata store:
 * AES-256-GCM with a random 96-bit nonce per value. The stored form is
 * "v2:<key id>:<nonce b64>:<tag b64>:<ciphertext b64>"; the key id (keyIdOf) says which key
 * encrypted the value, so that a wrong key and a damaged value are told apart.
 * "v1:<nonce>:<tag>:<ciphertext>" (before key ids) is still read; `ferry keys rotate` rewrites it.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { FerryError } from '../core/errors.js';

export const SECRET_KEY_BYTES = 32;

/** Why a stored secret cannot be read. */
export type UnreadableReason = 'wrong-key' | 'damaged';

/** What the box can say about a stored secret without decrypting it. */
export interface SecretInspection {
  /** The id of the key that encrypted it; null for the v1 format, which does not record it. */
  keyId: string | null;
  /** False when the value is not in a format this Ferry reads. */
  wellFormed: boolean;
}

/**
 * The key's public name: the first 8 bytes of HMAC-SHA256(key, "ferry secret key id"), in hex.
 * It identifies a key without revealing it.
 */
export function keyIdOf(key: Buffer): string {
  return createHmac('sha256', key).update('ferry secret key id').digest('hex').slice(0, 16);
}

/** A new random key. */
export function generateSecretKey(): Buffer {
  return randomBytes(SECRET_KEY_BYTES);
}

export class SecretBox {
  readonly #key: Buffer;
  readonly keyId: string;
  /** Where the key came from, for messages: "the key file /var/lib/ferry/secret.key", "FERRY_SECRET_KEY". */
  readonly origin: string;

  constructor(key: Buffer, origin = 'the secret key') {
    if (key.length !== SECRET_KEY_BYTES) {
      throw new FerryError('INVALID_ARGUMENT', `A secret key must be ${SECRET_KEY_BYTES} bytes; got ${key.length}.`);
    }
    this.#key = key;
    this.keyId = keyIdOf(key);
    this.origin = origin;
  }

  encrypt(plaintext: string): string {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v2', this.keyId, nonce.toString('base64'), cipher.getAuthTag().toString('base64'), body.toString('base64')].join(':');
  }

  inspect(stored: string): SecretInspection {
    const parts = stored.split(':');
    if (parts[0] === 'v2' && parts.length === 5 && /^[0-9a-f]{16}$/.test(parts[1] as string)) return { keyId: parts[1] as string, wellFormed: true };
    if (parts[0] === 'v1' && parts.length === 4) return { keyId: null, wellFormed: true };
    return { keyId: null, wellFormed: false };
  }

  /** True when this box's key encrypted the value and it decrypts. */
  canDecrypt(stored: string): boolean {
    try {
      this.decrypt(stored);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The plaintext. Rejects with SECRET_UNREADABLE (recoverable: the fix is outside the job)
   * whose details say why: `reason` "wrong-key" (another key encrypted it: `keyId` names
   * that key) or "damaged" (this key encrypted it but it does not decrypt, or it is not in
   * a format this Ferry reads). Callers put the owner and the fix in the message.
   */
  decrypt(stored: string): string {
    const parts = stored.split(':');
    const { keyId, wellFormed } = this.inspect(stored);
    if (!wellFormed) throw this.#unreadable('damaged', null);
    if (keyId !== null && keyId !== this.keyId) throw this.#unreadable('wrong-key', keyId);
    const [nonce, tag, body] = keyId === null ? parts.slice(1) : parts.slice(2);
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(nonce as string, 'base64'));
      decipher.setAuthTag(Buffer.from(tag as string, 'base64'));
      return Buffer.concat([decipher.update(Buffer.from(body as string, 'base64')), decipher.final()]).toString('utf8');
    } catch (cause) {
      // v1 records no key id: a failure there is either a wrong key or damage.
      throw this.#unreadable(keyId === null ? 'wrong-key' : 'damaged', keyId, cause);
    }
  }

  #unreadable(reason: UnreadableReason, keyId: string | null, cause?: unknown): FerryError {
    const message = reason === 'damaged'
      ? `A stored secret is damaged: it ${keyId === null ? 'is not in a format this Ferry reads' : `was encrypted with the current key (key id ${this.keyId}) but does not decrypt`}.`
      : keyId === null
        ? `A stored secret does not decrypt with the current key (key id ${this.keyId}): another key encrypted it, or it is damaged.`
        : `A stored secret was encrypted with another key (key id ${keyId}) than the current one (key id ${this.keyId}).`;
    return new FerryError('SECRET_UNREADABLE', message, {
      recoverable: true,
      details: { reason, keyId, currentKeyId: this.keyId },
      ...(cause === undefined ? {} : { cause }),
    });
  }
}
