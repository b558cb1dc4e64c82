/**
 * Shown whenever the API answers 401: this server listens beyond loopback and wants an API
 * token. The token is kept in this browser's localStorage and sent as a bearer token.
 */
import { useState, type FormEvent } from 'react';
import { ApiError, api, clearToken, errorMessage, saveToken, storedToken } from '../api/client';

export function LoginPage({ onSignedIn }: { onSignedIn: () => void }) {
  const [token, setToken] = useState('');
  const [checking, setChecking] = useState(false);
  const [error, setError] = useState<string | null>(storedToken() ? 'The saved API token was refused (revoked or not valid here). Enter another one.' : null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setChecking(true);
    setError(null);
    saveToken(token.trim());
    try {
      // Any authenticated read tells whether the server takes the token.
      await api.listProfiles();
      setToken('');
      onSignedIn();
    } catch (caught) {
      clearToken();
      setError(caught instanceof ApiError && caught.status === 401 ? 'This token is not valid for this Ferry server (unknown or revoked).' : errorMessage(caught));
    } finally {
      setChecking(false);
    }
  };

  return (
    <section className="page login">
      <div className="card">
        <h1>Sign in to Ferry</h1>
        <p>
          This Ferry server requires an API token. Create one on the server with <code>ferry tokens create --name NAME</code> and paste its secret here.
        </p>
        <form className="form" onSubmit={(event) => void submit(event)} aria-label="Sign in">
          <div className="field">
            <label htmlFor="api-token">API token</label>
            <input
              id="api-token"
              type="password"
              autoComplete="off"
              required
              placeholder="ferry_…"
              value={token}
              onChange={(e) => setToken(e.target.value)}
            />
            <div className="hint">Kept in this browser (local storage) until you sign out.</div>
          </div>
          {error && (
            <div className="alert alert-error" role="alert">
              {error}
            </div>
          )}
          <div className="button-row">
            <button type="submit" className="primary" disabled={checking || token.trim() === ''}>
              {checking ? 'Checking…' : 'Sign in'}
            </button>
          </div>
        </form>
      </div>
    </section>
  );
}
