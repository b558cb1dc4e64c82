/**
 * Connection profiles: the list (with the jobs that use each profile), one profile (edit,
 * test, delete, its jobs) and the create page. Delete is refused by the API while a job that
 * is not Completed uses the profile; the console shows the API's message.
 */
import { useState } from 'react';
import { ApiError, api } from '../api/client';
import type { ConnectionTest, Job, Profile } from '../api/types';
import { Alert, ErrorAlert } from '../components/alert';
import { ConfirmDialog } from '../components/confirm-dialog';
import { ConnectionTestResult } from '../components/connection-test-result';
import { ProfileForm } from '../components/profile-form';
import { StatusBadge } from '../components/status-badge';
import { connectivityName, engineName, formatTime } from '../lib/format';
import type { Confirmation } from '../lib/job-actions';
import { Link, navigate, paths, useLocation } from '../lib/router';
import { usePolling } from '../lib/use-polling';

const REFRESH_MILLIS = 5000;

function jobsUsing(jobs: Job[], profileId: string): Job[] {
  return jobs.filter((job) => job.sourceProfileId === profileId || job.destinationProfileId === profileId);
}

function endpoint(profile: Profile): string {
  return `${profile.host}:${profile.port}${profile.database ? `/${profile.database}` : ''}`;
}

function deleteConfirmation(profile: Profile, users: Job[]): Confirmation {
  const active = users.filter((job) => job.status !== 'COMPLETED');
  return {
    title: `Delete connection profile "${profile.displayName}"?`,
    paragraphs: [
      'The profile and its stored password are removed; the databases are not touched. This cannot be undone.',
      ...(users.length > 0 ? [`${users.length} ${users.length === 1 ? 'job uses' : 'jobs use'} it.`] : []),
    ],
    warning:
      active.length > 0
        ? `${active.length === 1 ? 'A job that is' : `${active.length} jobs that are`} not Completed ${active.length === 1 ? 'uses' : 'use'} this profile: Ferry will refuse to delete it.`
        : null,
    confirmLabel: 'Delete',
    danger: true,
  };
}

/** Test and Delete for one profile, with the result or the refusal shown below. */
function useProfileActions({ onBeforeDelete, onDeleted, onRefused }: { onBeforeDelete?: () => void; onDeleted: () => void; onRefused?: () => void }) {
  const [testing, setTesting] = useState<string | null>(null);
  const [test, setTest] = useState<{ profile: Profile; result: ConnectionTest } | null>(null);
  const [pendingDelete, setPendingDelete] = useState<{ profile: Profile; users: Job[] } | null>(null);
  const [deleting, setDeleting] = useState(false);
  const [error, setError] = useState<{ title: string; error: unknown } | null>(null);

  const runTest = async (profile: Profile) => {
    setTesting(profile.id);
    setTest(null);
    setError(null);
    try {
      setTest({ profile, result: await api.testProfile(profile.id) });
    } catch (caught) {
      setError({ title: `Could not test ${profile.displayName}`, error: caught });
    } finally {
      setTesting(null);
    }
  };

  const runDelete = async () => {
    if (!pendingDelete) return;
    setDeleting(true);
    setError(null);
    onBeforeDelete?.();
    try {
      await api.deleteProfile(pendingDelete.profile.id);
      onDeleted();
    } catch (caught) {
      setError({ title: `Connection profile "${pendingDelete.profile.displayName}" was not deleted`, error: caught });
      onRefused?.();
    } finally {
      setDeleting(false);
      setPendingDelete(null);
    }
  };

  const panels = (
    <>
      {error && (
        <div data-testid="profile-error">
          <ErrorAlert error={error.error} title={error.title} />
        </div>
      )}
      {test && (
        <div className="card">
          <h2>Connection test: {test.profile.displayName}</h2>
          <ConnectionTestResult result={test.result} />
        </div>
      )}
      {pendingDelete && (
        <ConfirmDialog
          confirmation={deleteConfirmation(pendingDelete.profile, pendingDelete.users)}
          busy={deleting}
          onConfirm={() => void runDelete()}
          onCancel={() => setPendingDelete(null)}
        />
      )}
    </>
  );
  return { testing, runTest, askDelete: (profile: Profile, users: Job[]) => setPendingDelete({ profile, users }), panels };
}

export function ProfilesListPage() {
  const profiles = usePolling((signal) => api.listProfiles(signal), REFRESH_MILLIS, []);
  const jobs = usePolling((signal) => api.listJobs([], signal), REFRESH_MILLIS, []);
  const actions = useProfileActions({ onDeleted: () => profiles.reload() });
  const allJobs = jobs.data ?? [];

  return (
    <section className="page">
      <header className="page-header">
        <h1>Connection profiles</h1>
        <Link to={paths.createProfile} className="button primary">
          Create profile
        </Link>
      </header>
      <ErrorAlert error={profiles.error} title="Could not load the connection profiles" />
      {actions.panels}
      {profiles.data === undefined ? (
        profiles.error === null && <p className="muted">Loading…</p>
      ) : profiles.data.length === 0 ? (
        <div className="empty">
          <p>No connection profiles yet.</p>
          <p>
            <Link to={paths.createProfile}>Create a connection profile</Link> for each database a job reads from or writes to.
          </p>
        </div>
      ) : (
        <table className="table" data-testid="profiles-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>ID</th>
              <th>Engine</th>
              <th>Endpoint</th>
              <th>Username</th>
              <th>Password</th>
              <th>TLS</th>
              <th>Used by</th>
              <th>Created</th>
              <th>Actions</th>
            </tr>
          </thead>
          <tbody>
            {profiles.data.map((profile) => {
              const users = jobsUsing(allJobs, profile.id);
              return (
                <tr key={profile.id} data-profile-id={profile.id}>
                  <td>
                    <Link to={paths.profile(profile.id)}>{profile.displayName}</Link>
                  </td>
                  <td>
                    <code>{profile.id}</code>
                  </td>
                  <td>{engineName(profile.engine)}</td>
                  <td>
                    <code>{endpoint(profile)}</code>
                  </td>
                  <td>{profile.username}</td>
                  <td>{profile.passwordSet ? 'Set' : 'Not set'}</td>
                  <td>{profile.tls.mode}</td>
                  <td>
                    {users.length === 0
                      ? 'No jobs'
                      : users.map((job, index) => (
                          <span key={job.id}>
                            {index > 0 && ', '}
                            <Link to={paths.job(job.id)}>{job.displayName}</Link>
                          </span>
                        ))}
                  </td>
                  <td className="nowrap">{formatTime(profile.createTime)}</td>
                  <td className="nowrap">
                    <button type="button" className="small-button" onClick={() => void actions.runTest(profile)} disabled={actions.testing === profile.id}>
                      {actions.testing === profile.id ? 'Testing…' : 'Test'}
                    </button>{' '}
                    <Link to={`${paths.profile(profile.id)}?edit=1`} className="button small-button">
                      Edit
                    </Link>{' '}
                    <button type="button" className="small-button danger-outline" onClick={() => actions.askDelete(profile, users)}>
                      Delete
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function ProfilePage({ id }: { id: string }) {
  const { search } = useLocation();
  const editing = new URLSearchParams(search).get('edit') === '1';
  const profile = usePolling((signal) => api.getProfile(id, signal), REFRESH_MILLIS, [id]);
  const jobs = usePolling((signal) => api.listJobs([], signal), REFRESH_MILLIS, []);
  const [saved, setSaved] = useState(false);
  // Asking for a profile while it is deleted would end in a 404: pause, and resume if refused.
  const actions = useProfileActions({ onBeforeDelete: profile.pause, onDeleted: () => navigate(paths.profiles), onRefused: profile.reload });
  const notFound = profile.error instanceof ApiError && profile.error.status === 404;

  if (notFound) {
    return (
      <section className="page">
        <p>
          <Link to={paths.profiles}>Connection profiles</Link>
        </p>
        <Alert tone="info" title="This connection profile does not exist">
          Connection profile <code>{id}</code> was deleted or never existed.
        </Alert>
      </section>
    );
  }
  const current = profile.data;
  if (!current) {
    return (
      <section className="page">
        <p>
          <Link to={paths.profiles}>Connection profiles</Link>
        </p>
        {profile.error ? <ErrorAlert error={profile.error} title="Could not load the connection profile" /> : <p className="muted">Loading…</p>}
      </section>
    );
  }
  const users = jobsUsing(jobs.data ?? [], current.id);
  const setEditing = (on: boolean) => navigate(on ? `${paths.profile(id)}?edit=1` : paths.profile(id), { replace: true });

  return (
    <section className="page" data-testid="profile-details">
      <nav className="breadcrumb">
        <Link to={paths.profiles}>Connection profiles</Link> / <span>{current.displayName}</span>
      </nav>
      <header className="page-header">
        <h1>{current.displayName}</h1>
        <div className="button-row">
          <button type="button" onClick={() => void actions.runTest(current)} disabled={actions.testing !== null}>
            {actions.testing ? 'Testing…' : 'Test connection'}
          </button>
          {!editing && (
            <button type="button" onClick={() => setEditing(true)}>
              Edit
            </button>
          )}
          <button type="button" className="danger-outline" onClick={() => actions.askDelete(current, users)}>
            Delete
          </button>
        </div>
      </header>
      {saved && !editing && <Alert tone="success">Changes saved.</Alert>}
      {actions.panels}

      {editing ? (
        <div className="card">
          <h2>Edit connection profile</h2>
          <ProfileForm
            key={current.updateTime}
            profile={current}
            onSaved={() => {
              setSaved(true);
              setEditing(false);
              profile.reload();
            }}
            onCancel={() => setEditing(false)}
          />
        </div>
      ) : (
        <div className="card">
          <h2>Connection profile</h2>
          <dl className="fields">
            {(
              [
                ['ID', <code key="id">{current.id}</code>],
                ['Display name', current.displayName],
                ['Database engine', engineName(current.engine)],
                ['Host', current.host],
                ['Port', String(current.port)],
                ['Database', current.database ?? '—'],
                ['Username', current.username],
                ['Password', current.passwordSet ? 'Set (stored encrypted)' : 'Not set'],
                [
                  'TLS',
                  `${current.tls.mode}${current.tls.caCertificateSet ? ', CA certificate set' : ''}${current.tls.clientCertificateSet ? ', client certificate set' : ''}`,
                ],
                ['Connectivity method', connectivityName(current.connectivityMethod)],
                ['Created', formatTime(current.createTime)],
                ['Updated', formatTime(current.updateTime)],
              ] as const
            ).map(([label, value]) => (
              <div key={label}>
                <dt>{label}</dt>
                <dd>{value}</dd>
              </div>
            ))}
          </dl>
        </div>
      )}

      <div className="card">
        <h2>Migration jobs using this profile</h2>
        {users.length === 0 ? (
          <p className="muted">No migration job uses this profile.</p>
        ) : (
          <table className="table" data-testid="profile-jobs">
            <thead>
              <tr>
                <th>Job</th>
                <th>Role</th>
                <th>Status</th>
                <th>Substatus</th>
              </tr>
            </thead>
            <tbody>
              {users.map((job) => (
                <tr key={job.id}>
                  <td>
                    <Link to={paths.job(job.id)}>{job.displayName}</Link>
                  </td>
                  <td>{job.sourceProfileId === current.id ? 'Source' : 'Destination'}</td>
                  <td>
                    <StatusBadge status={job.status} label={job.statusLabel} />
                  </td>
                  <td>{job.substatus ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}

export function CreateProfilePage() {
  return (
    <section className="page">
      <nav className="breadcrumb">
        <Link to={paths.profiles}>Connection profiles</Link> / <span>Create profile</span>
      </nav>
      <h1>Create connection profile</h1>
      <div className="card">
        <ProfileForm onSaved={(profile) => navigate(paths.profile(profile.id))} onCancel={() => navigate(paths.profiles)} />
      </div>
    </section>
  );
}
