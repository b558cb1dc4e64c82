/**
 * API tokens: who may call the REST API when `ferry serve` listens beyond loopback.
 *
 * A token's secret (`ferry_<43 base64url characters>`, 256 random bits) is returned once, by
 * `create`; the store keeps only its SHA-256, so a copy of the metadata database does not let
 * anyone in. `list` never returns secrets. A revoked token is refused from the next request on.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { FerryError } from '../core/errors.js';
import type { Clock } from '../pipeline/clock.js';
import type { MetadataStore, StoredApiToken } from '../store/metadata-store.js';

export const TOKEN_PREFIX = 'ferry_';

/** lastUsedTime is written at most this often per token: a console polling every 2 s must not write every 2 s. */
const TOUCH_INTERVAL_MILLIS = 60_000;

/** A token as `ferry tokens list` shows it: never the secret. */
export interface ApiTokenView {
  id: string;
  name: string;
  createTime: string;
  lastUsedTime: string | null;
  revokeTime: string | null;
  /** 'revoked' once revokeTime is set. */
  state: 'active' | 'revoked';
}

export interface CreatedApiToken {
  token: ApiTokenView;
  /** The secret to send as `Authorization: Bearer <secret>`. Shown once: Ferry cannot show it again. */
  secret: string;
}

export interface TokenServiceDeps {
  store: MetadataStore;
  clock: Clock;
  /**
   * FERRY_API_TOKEN: a token accepted besides the stored ones, so that a server can be
   * reached before any token was created. Undefined or empty: none.
   */
  bootstrapToken?: string;
}

/** Hex SHA-256 of a token secret, as the store keeps it. */
export function hashToken(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export class TokenService {
  readonly #deps: TokenServiceDeps;
  readonly #bootstrapDigest: Buffer | null;
  /** Token id -> when its lastUsedTime was last written by this process. */
  readonly #touched = new Map<string, number>();

  constructor(deps: TokenServiceDeps) {
    this.#deps = deps;
    const bootstrap = deps.bootstrapToken;
    this.#bootstrapDigest = bootstrap === undefined || bootstrap === '' ? null : Buffer.from(hashToken(bootstrap), 'hex');
  }

  /** Creates a token named `name` and returns it with its secret (the only time the secret is shown). */
  async create(name: string): Promise<CreatedApiToken> {
    const trimmed = name.trim();
    if (trimmed === '' || trimmed.length > 100) {
      throw new FerryError('INVALID_ARGUMENT', 'A token name is 1 to 100 characters and says what the token is for, e.g. --name ci.');
    }
    const secret = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const token: StoredApiToken = {
      id: `tok-${randomBytes(6).toString('hex')}`,
      name: trimmed,
      tokenHash: hashToken(secret),
      createTime: this.#deps.clock.now(),
      lastUsedTime: null,
      revokeTime: null,
    };
    await this.#deps.store.insertApiToken(token);
    return { token: toView(token), secret };
  }

  /** Every token, revoked ones included, oldest first; never a secret. */
  async list(): Promise<ApiTokenView[]> {
    return (await this.#deps.store.listApiTokens()).map(toView);
  }

  /** Revokes the token: requests that send it are refused from now on. */
  async revoke(id: string): Promise<ApiTokenView> {
    await this.#deps.store.revokeApiToken(id, this.#deps.clock.now());
    const token = (await this.#deps.store.listApiTokens()).find((t) => t.id === id);
    if (token === undefined) throw new FerryError('NOT_FOUND', `API token "${id}" does not exist; list tokens to find the right id.`);
    return toView(token);
  }

  /** True when `secret` is FERRY_API_TOKEN or a stored token that is not revoked. */
  async authenticate(secret: string): Promise<boolean> {
    const hash = hashToken(secret);
    if (this.#bootstrapDigest !== null && timingSafeEqual(Buffer.from(hash, 'hex'), this.#bootstrapDigest)) return true;
    // The lookup is by the hash of a 256-bit secret: timing reveals nothing usable about other tokens.
    const token = await this.#deps.store.findApiTokenByHash(hash);
    if (token === null || token.revokeTime !== null) return false;
    await this.#touch(token);
    return true;
  }

  /** True when a request could authenticate at all: a bootstrap token is set or a token exists that is not revoked. */
  async hasUsableTokens(): Promise<boolean> {
    if (this.#bootstrapDigest !== null) return true;
    return (await this.#deps.store.listApiTokens()).some((t) => t.revokeTime === null);
  }

  async #touch(token: StoredApiToken): Promise<void> {
    const now = Date.parse(this.#deps.clock.now());
    const last = this.#touched.get(token.id) ?? (token.lastUsedTime === null ? 0 : Date.parse(token.lastUsedTime));
    if (now - last < TOUCH_INTERVAL_MILLIS) return;
    this.#touched.set(token.id, now);
    await this.#deps.store.touchApiToken(token.id, new Date(now).toISOString());
  }
}

function toView(token: StoredApiToken): ApiTokenView {
  return {
    id: token.id,
    name: token.name,
    createTime: token.createTime,
    lastUsedTime: token.lastUsedTime,
    revokeTime: token.revokeTime,
    state: token.revokeTime === null ? 'active' : 'revoked',
  };
}
