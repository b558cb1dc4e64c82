/**
 * API tokens: the store keeps only a hash, the secret is shown once, revoked tokens stop
 * working at once, and lastUsedTime is written at most once a minute.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/core/errors.js';
import type { Clock } from '../../src/pipeline/clock.js';
import { TOKEN_PREFIX, TokenService, hashToken } from '../../src/service/token-service.js';
import { SqliteMetadataStore } from '../../src/store/sqlite/sqlite-metadata-store.js';

const stores: SqliteMetadataStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

async function setup(bootstrapToken?: string) {
  const store = SqliteMetadataStore.open(':memory:');
  stores.push(store);
  await store.migrate();
  let now = Date.parse('2026-01-01T00:00:00.000Z');
  const clock: Clock = { now: () => new Date(now).toISOString() };
  const tokens = new TokenService({ store, clock, ...(bootstrapToken !== undefined ? { bootstrapToken } : {}) });
  return { store, tokens, advance: (ms: number) => (now += ms) };
}

describe('TokenService', () => {
  it('creates a token whose secret is shown once and stored only as its SHA-256', async () => {
    const { store, tokens } = await setup();
    const created = await tokens.create('  ci  ');
    expect(created.secret).toMatch(new RegExp(`^${TOKEN_PREFIX}[A-Za-z0-9_-]{43}$`));
    expect(created.token).toMatchObject({ name: 'ci', state: 'active', lastUsedTime: null, revokeTime: null });
    expect(created.token.id).toMatch(/^tok-[0-9a-f]{12}$/);

    const stored = await store.listApiTokens();
    expect(stored).toHaveLength(1);
    expect(stored[0]!.tokenHash).toBe(createHash('sha256').update(created.secret).digest('hex'));
    expect(JSON.stringify(stored)).not.toContain(created.secret);

    const listed = await tokens.list();
    expect(listed).toEqual([created.token]);
    expect(JSON.stringify(listed)).not.toContain(created.secret);
    expect(JSON.stringify(listed)).not.toContain(stored[0]!.tokenHash);
  });

  it('refuses an empty or overlong name', async () => {
    const { tokens } = await setup();
    await expect(tokens.create('   ')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(tokens.create('x'.repeat(101))).rejects.toBeInstanceOf(FerryError);
  });

  it('authenticates active tokens only; revocation takes effect at once', async () => {
    const { tokens } = await setup();
    const a = await tokens.create('a');
    const b = await tokens.create('b');
    expect(a.secret).not.toBe(b.secret);
    expect(await tokens.authenticate(a.secret)).toBe(true);
    expect(await tokens.authenticate(b.secret)).toBe(true);
    expect(await tokens.authenticate('ferry_not-a-token')).toBe(false);
    expect(await tokens.authenticate('')).toBe(false);

    const revoked = await tokens.revoke(a.token.id);
    expect(revoked).toMatchObject({ id: a.token.id, state: 'revoked' });
    expect(revoked.revokeTime).not.toBeNull();
    expect(await tokens.authenticate(a.secret)).toBe(false);
    expect(await tokens.authenticate(b.secret)).toBe(true);

    // Revoking again keeps the first revocation time.
    expect((await tokens.revoke(a.token.id)).revokeTime).toBe(revoked.revokeTime);
    await expect(tokens.revoke('tok-000000000000')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const states = Object.fromEntries((await tokens.list()).map((t) => [t.id, t.state]));
    expect(states).toEqual({ [a.token.id]: 'revoked', [b.token.id]: 'active' });
  });

  it('records when a token was last used, at most once a minute', async () => {
    const { store, tokens, advance } = await setup();
    const { secret, token } = await tokens.create('console');
    expect(await tokens.authenticate(secret)).toBe(true);
    const first = (await store.listApiTokens())[0]!.lastUsedTime;
    expect(first).toBe('2026-01-01T00:00:00.000Z');
    advance(30_000);
    await tokens.authenticate(secret);
    expect((await store.listApiTokens())[0]!.lastUsedTime).toBe(first);
    advance(31_000);
    await tokens.authenticate(secret);
    expect((await tokens.list()).find((t) => t.id === token.id)?.lastUsedTime).toBe('2026-01-01T00:01:01.000Z');
  });

  it('accepts the bootstrap token (FERRY_API_TOKEN) besides stored ones', async () => {
    const { tokens } = await setup('bootstrap-secret');
    expect(await tokens.hasUsableTokens()).toBe(true);
    expect(await tokens.authenticate('bootstrap-secret')).toBe(true);
    expect(await tokens.authenticate('bootstrap-secreT')).toBe(false);

    const without = await setup();
    expect(await without.tokens.hasUsableTokens()).toBe(false);
    const { token } = await without.tokens.create('x');
    expect(await without.tokens.hasUsableTokens()).toBe(true);
    await without.tokens.revoke(token.id);
    expect(await without.tokens.hasUsableTokens()).toBe(false);
  });
});

describe('SqliteMetadataStore api tokens', () => {
  it('refuses a second token with the same hash and finds tokens by hash', async () => {
    const { store } = await setup();
    const token = { id: 'tok-1', name: 'one', tokenHash: hashToken('s1'), createTime: 't', lastUsedTime: null, revokeTime: null };
    await store.insertApiToken(token);
    await expect(store.insertApiToken({ ...token, id: 'tok-2' })).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
    await expect(store.insertApiToken({ ...token, tokenHash: hashToken('s2') })).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
    expect(await store.findApiTokenByHash(hashToken('s1'))).toEqual(token);
    expect(await store.findApiTokenByHash(hashToken('nope'))).toBeNull();
    await store.touchApiToken('tok-unknown', 'later');
    await expect(store.revokeApiToken('tok-unknown', 'later')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
