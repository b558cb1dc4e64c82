/**
 * Create or edit a connection profile. The password (and a client key) is write-only: the
 * form sends it and forgets it; the API only ever says whether one is set.
 */
import { useId, useState, type FormEvent, type ReactNode } from 'react';
import { api } from '../api/client';
import type { ConnectionTest, ConnectivityMethod, CreateProfileInput, EngineKind, Profile, TlsMode, UpdateProfileInput } from '../api/types';
import { ErrorAlert } from './alert';
import { ConnectionTestResult } from './connection-test-result';

const DEFAULT_PORTS: Record<EngineKind, number> = { postgresql: 5432, mysql: 3306 };

interface FormState {
  id: string;
  displayName: string;
  engine: EngineKind;
  host: string;
  port: string;
  database: string;
  username: string;
  password: string;
  clearPassword: boolean;
  tlsMode: TlsMode;
  caCertificate: string;
  clientCertificate: string;
  clientKey: string;
  connectivityMethod: ConnectivityMethod;
  sshHost: string;
  sshPort: string;
  sshUser: string;
  sshPrivateKey: string;
  sshHostKeyFingerprint: string;
}

function initialState(profile: Profile | undefined): FormState {
  return {
    id: profile?.id ?? '',
    displayName: profile?.displayName ?? '',
    engine: profile?.engine ?? 'postgresql',
    host: profile?.host ?? '',
    port: profile ? String(profile.port) : '',
    database: profile?.database ?? '',
    username: profile?.username ?? '',
    password: '',
    clearPassword: false,
    tlsMode: profile?.tls.mode ?? 'none',
    caCertificate: '',
    clientCertificate: '',
    clientKey: '',
    connectivityMethod: profile?.connectivityMethod ?? 'direct',
    sshHost: profile?.sshTunnel?.host ?? '',
    sshPort: profile?.sshTunnel ? String(profile.sshTunnel.port) : '',
    sshUser: profile?.sshTunnel?.username ?? '',
    sshPrivateKey: '',
    sshHostKeyFingerprint: profile?.sshTunnel?.hostKeyFingerprint ?? '',
  };
}

function tlsOf(state: FormState): CreateProfileInput['tls'] {
  return {
    mode: state.tlsMode,
    ...(state.caCertificate.trim() ? { caCertificate: state.caCertificate } : {}),
    ...(state.clientCertificate.trim() ? { clientCertificate: state.clientCertificate } : {}),
    ...(state.clientKey.trim() ? { clientKey: state.clientKey } : {}),
  };
}

function sshOf(state: FormState): NonNullable<CreateProfileInput['sshTunnel']> {
  return {
    host: state.sshHost.trim(),
    ...(state.sshPort.trim() ? { port: Number(state.sshPort) } : {}),
    username: state.sshUser.trim(),
    ...(state.sshPrivateKey.trim() ? { privateKey: state.sshPrivateKey } : {}),
    ...(state.sshHostKeyFingerprint.trim() ? { hostKeyFingerprint: state.sshHostKeyFingerprint.trim() } : {}),
  };
}

function createInput(state: FormState): CreateProfileInput {
  return {
    ...(state.id.trim() ? { id: state.id.trim() } : {}),
    displayName: state.displayName.trim(),
    engine: state.engine,
    host: state.host.trim(),
    ...(state.port.trim() ? { port: Number(state.port) } : {}),
    ...(state.engine === 'postgresql' && state.database.trim() ? { database: state.database.trim() } : {}),
    username: state.username.trim(),
    ...(state.password !== '' ? { password: state.password } : {}),
    tls: tlsOf(state),
    connectivityMethod: state.connectivityMethod,
    ...(state.connectivityMethod === 'ssh-tunnel' ? { sshTunnel: sshOf(state) } : {}),
  };
}

/** Only what changed: a PATCH must not touch what the user left alone. */
function updateInput(state: FormState, profile: Profile): UpdateProfileInput {
  const input: UpdateProfileInput = {};
  if (state.displayName.trim() !== profile.displayName) input.displayName = state.displayName.trim();
  if (state.host.trim() !== profile.host) input.host = state.host.trim();
  if (state.port.trim() !== '' && Number(state.port) !== profile.port) input.port = Number(state.port);
  const database = state.database.trim() === '' ? null : state.database.trim();
  if (profile.engine === 'postgresql' && database !== profile.database && database !== null) input.database = database;
  if (state.username.trim() !== profile.username) input.username = state.username.trim();
  if (state.clearPassword) input.password = null;
  else if (state.password !== '') input.password = state.password;
  if (state.tlsMode !== profile.tls.mode || state.caCertificate.trim() || state.clientCertificate.trim() || state.clientKey.trim()) {
    input.tls = tlsOf(state);
  }
  if (state.connectivityMethod !== profile.connectivityMethod) input.connectivityMethod = state.connectivityMethod;
  if (state.connectivityMethod === 'ssh-tunnel') {
    const ssh = profile.sshTunnel;
    const changed =
      ssh === null ||
      state.sshHost.trim() !== ssh.host ||
      (state.sshPort.trim() !== '' && Number(state.sshPort) !== ssh.port) ||
      state.sshUser.trim() !== ssh.username ||
      state.sshPrivateKey.trim() !== '' ||
      state.sshHostKeyFingerprint.trim() !== (ssh.hostKeyFingerprint ?? '');
    if (changed) input.sshTunnel = sshOf(state);
  }
  return input;
}

function Field({ label, hint, children }: { label: string; hint?: string; children: (id: string) => ReactNode }) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children(id)}
      {hint && <div className="hint">{hint}</div>}
    </div>
  );
}

export function ProfileForm({
  profile,
  onSaved,
  onCancel,
  defaultDisplayName,
}: {
  /** The profile to edit; absent to create one. */
  profile?: Profile;
  onSaved: (profile: Profile) => void;
  onCancel?: () => void;
  defaultDisplayName?: string;
}) {
  const editing = profile !== undefined;
  const [state, setState] = useState<FormState>(() => ({ ...initialState(profile), displayName: profile?.displayName ?? defaultDisplayName ?? '' }));
  const [saving, setSaving] = useState(false);
  const [testing, setTesting] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [test, setTest] = useState<ConnectionTest | null>(null);

  const set = <K extends keyof FormState>(key: K, value: FormState[K]) => {
    setState((current) => ({ ...current, [key]: value }));
    setTest(null);
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setSaving(true);
    setError(null);
    try {
      const saved = editing ? await api.updateProfile(profile.id, updateInput(state, profile)) : await api.createProfile(createInput(state));
      // Write-only secrets leave the page's memory once sent.
      setState((current) => ({ ...current, password: '', clearPassword: false, clientKey: '' }));
      onSaved(saved);
    } catch (caught) {
      setError(caught);
    } finally {
      setSaving(false);
    }
  };

  const testConnection = async (form: HTMLFormElement | null) => {
    // The same checks as saving (required fields, port range), before asking the server.
    if (form && !form.reportValidity()) return;
    setTesting(true);
    setError(null);
    setTest(null);
    try {
      setTest(await api.testProfileInput(createInput(state)));
    } catch (caught) {
      setError(caught);
    } finally {
      setTesting(false);
    }
  };

  const needsCa = state.tlsMode === 'server-only' || state.tlsMode === 'server-client';
  const needsClient = state.tlsMode === 'server-client';
  /** A stored SSH key may stay; without one the key is required. */
  const sshKeyStored = editing && profile.sshTunnel?.privateKeySet === true;
  return (
    <form className="form" onSubmit={(event) => void submit(event)} aria-label={editing ? 'Edit connection profile' : 'New connection profile'}>
      <div className="form-grid">
        <Field label="Display name">
          {(id) => <input id={id} required maxLength={200} value={state.displayName} onChange={(e) => set('displayName', e.target.value)} />}
        </Field>
        {!editing && (
          <Field label="Profile ID" hint="Lowercase letters, digits and -; generated from the name when empty.">
            {(id) => <input id={id} pattern="[a-z][a-z0-9\-]{0,62}" value={state.id} onChange={(e) => set('id', e.target.value)} />}
          </Field>
        )}
        <Field label="Database engine" hint={editing ? 'The engine of a profile cannot change.' : 'MariaDB is MySQL.'}>
          {(id) => (
            <select id={id} value={state.engine} disabled={editing} onChange={(e) => set('engine', e.target.value as EngineKind)}>
              <option value="postgresql">PostgreSQL</option>
              <option value="mysql">MySQL / MariaDB</option>
            </select>
          )}
        </Field>
        <Field label="Host">
          {(id) => <input id={id} required maxLength={255} value={state.host} onChange={(e) => set('host', e.target.value)} placeholder="db.example.com" />}
        </Field>
        <Field label="Port">
          {(id) => (
            <input id={id} type="number" min={1} max={65535} value={state.port} onChange={(e) => set('port', e.target.value)} placeholder={String(DEFAULT_PORTS[state.engine])} />
          )}
        </Field>
        {state.engine === 'postgresql' && (
          <Field label="Database" hint="The database to migrate; postgres when empty.">
            {(id) => <input id={id} maxLength={63} value={state.database} onChange={(e) => set('database', e.target.value)} placeholder="postgres" />}
          </Field>
        )}
        <Field label="Username">
          {(id) => <input id={id} required maxLength={128} autoComplete="off" value={state.username} onChange={(e) => set('username', e.target.value)} />}
        </Field>
        <Field
          label="Password"
          hint={
            editing
              ? profile.passwordSet
                ? 'A password is stored (encrypted). Leave empty to keep it.'
                : 'No password is stored.'
              : 'Stored encrypted; never shown again.'
          }
        >
          {(id) => (
            <input
              id={id}
              type="password"
              autoComplete="new-password"
              maxLength={1024}
              value={state.password}
              disabled={state.clearPassword}
              onChange={(e) => set('password', e.target.value)}
            />
          )}
        </Field>
        {editing && profile.passwordSet && (
          <div className="field checkbox-field">
            <label>
              <input type="checkbox" checked={state.clearPassword} onChange={(e) => set('clearPassword', e.target.checked)} /> Remove the stored password
            </label>
          </div>
        )}
        <Field label="TLS">
          {(id) => (
            <select id={id} value={state.tlsMode} onChange={(e) => set('tlsMode', e.target.value as TlsMode)}>
              <option value="none">None</option>
              <option value="required">Required (encrypt, do not verify)</option>
              <option value="server-only">Server only (verify the server's CA)</option>
              <option value="server-client">Server and client (CA and client certificate)</option>
            </select>
          )}
        </Field>
        <Field
          label="Connectivity method"
          hint={
            state.connectivityMethod === 'ssh-tunnel'
              ? 'Ferry logs in to the SSH server below with its private key and reaches the database from there: Host and Port above are the database as that SSH server sees it.'
              : undefined
          }
        >
          {(id) => (
            <select id={id} value={state.connectivityMethod} onChange={(e) => set('connectivityMethod', e.target.value as ConnectivityMethod)}>
              <option value="direct">Direct</option>
              <option value="ssh-tunnel">SSH tunnel</option>
            </select>
          )}
        </Field>
        {state.connectivityMethod === 'ssh-tunnel' && (
          // Every field a tunnel needs is here and required, so the form cannot be sent half filled.
          <>
            <Field label="SSH host">{(id) => <input id={id} required maxLength={255} value={state.sshHost} onChange={(e) => set('sshHost', e.target.value)} placeholder="bastion.example.com" />}</Field>
            <Field label="SSH port" hint="Default 22.">
              {(id) => <input id={id} type="number" min={1} max={65535} value={state.sshPort} onChange={(e) => set('sshPort', e.target.value)} placeholder="22" />}
            </Field>
            <Field label="SSH user">{(id) => <input id={id} required maxLength={128} autoComplete="off" value={state.sshUser} onChange={(e) => set('sshUser', e.target.value)} />}</Field>
            <Field label="SSH private key" hint={sshKeyStored ? 'A key is stored (encrypted, never shown). Paste a new one to replace it.' : 'Unencrypted OpenSSH or PEM key. Write-only: stored encrypted, never shown.'}>
              {(id) => <textarea id={id} rows={4} required={!sshKeyStored} autoComplete="off" value={state.sshPrivateKey} onChange={(e) => set('sshPrivateKey', e.target.value)} />}
            </Field>
            <Field label="SSH host key fingerprint" hint="SHA256:... (ssh-keygen -lf). Empty: the first key seen is recorded and a different one refused later.">
              {(id) => <input id={id} value={state.sshHostKeyFingerprint} onChange={(e) => set('sshHostKeyFingerprint', e.target.value)} />}
            </Field>
          </>
        )}
        {needsCa && (
          <Field label="CA certificate (PEM)" hint={editing && profile.tls.caCertificateSet ? 'A CA certificate is stored. Paste a new one to replace it.' : undefined}>
            {(id) => <textarea id={id} rows={4} value={state.caCertificate} onChange={(e) => set('caCertificate', e.target.value)} />}
          </Field>
        )}
        {needsClient && (
          <>
            <Field label="Client certificate (PEM)" hint={editing && profile.tls.clientCertificateSet ? 'A client certificate is stored. Paste a new one to replace it.' : undefined}>
              {(id) => <textarea id={id} rows={4} value={state.clientCertificate} onChange={(e) => set('clientCertificate', e.target.value)} />}
            </Field>
            <Field label="Client key (PEM)" hint="Write-only: stored encrypted, never shown.">
              {(id) => <textarea id={id} rows={4} autoComplete="off" value={state.clientKey} onChange={(e) => set('clientKey', e.target.value)} />}
            </Field>
          </>
        )}
      </div>
      <ErrorAlert error={error} />
      {test && <ConnectionTestResult result={test} />}
      <div className="button-row">
        {!editing && (
          <button type="button" onClick={(e) => void testConnection(e.currentTarget.form)} disabled={testing || saving}>
            {testing ? 'Testing…' : 'Test connection'}
          </button>
        )}
        <button type="submit" className="primary" disabled={saving}>
          {saving ? 'Saving…' : editing ? 'Save changes' : 'Create profile'}
        </button>
        {onCancel && (
          <button type="button" onClick={onCancel} disabled={saving}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}
