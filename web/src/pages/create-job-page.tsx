/**
 * Create a migration job in steps: name and type; source and destination profiles (chosen or
 * created here, each with Test connection); objects and dump parallelism; then Verify.
 *
 * Verify needs a job (POST /v1/migrationJobs/{id}:verify), so "Create and verify" creates it
 * Not started, verifies it and shows every check; the job's own buttons (Start, Delete) follow.
 * Going back to the configuration updates the job while it is Not started.
 */
import { useState, type FormEvent } from 'react';
import { api } from '../api/client';
import type { ConnectionTest, Job, JobAction, JobType, Profile, VerifyReport } from '../api/types';
import { Alert, ErrorAlert } from '../components/alert';
import { CheckList } from '../components/check-list';
import { ConnectionTestResult } from '../components/connection-test-result';
import { JobActionButtons } from '../components/job-action-buttons';
import { ProfileForm } from '../components/profile-form';
import { StatusBadge } from '../components/status-badge';
import { patterns, TablePicker } from '../components/table-picker';
import { engineName } from '../lib/format';
import { Link, navigate, paths } from '../lib/router';
import { usePolling } from '../lib/use-polling';

const STEPS = ['Get started', 'Source', 'Destination', 'Objects', 'Verify'] as const;

function profileLabel(profile: Profile): string {
  return `${profile.displayName} (${engineName(profile.engine)}, ${profile.host}:${profile.port}${profile.database ? `/${profile.database}` : ''})`;
}

function ProfileStep({
  role,
  profiles,
  selectedId,
  onSelect,
  onCreated,
}: {
  role: 'source' | 'destination';
  profiles: Profile[];
  selectedId: string;
  onSelect: (id: string) => void;
  onCreated: (profile: Profile) => void;
}) {
  const [mode, setMode] = useState<'existing' | 'new'>(profiles.length === 0 ? 'new' : 'existing');
  const [test, setTest] = useState<ConnectionTest | null>(null);
  const [testing, setTesting] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const name = role === 'source' ? 'source' : 'destination';

  const testSelected = async () => {
    setTesting(true);
    setTest(null);
    setError(null);
    try {
      setTest(await api.testProfile(selectedId));
    } catch (caught) {
      setError(caught);
    } finally {
      setTesting(false);
    }
  };

  return (
    <div className="step-body">
      <p>
        {role === 'source'
          ? 'The database to migrate. Ferry reads it through a consistent snapshot; applications can keep writing.'
          : 'The database to migrate to. Its tables must be absent or empty: Ferry creates them.'}
      </p>
      <div className="radio-row" role="radiogroup" aria-label={`How to choose the ${name} profile`}>
        <label>
          <input type="radio" name={`${role}-mode`} checked={mode === 'existing'} disabled={profiles.length === 0} onChange={() => setMode('existing')} /> Use an
          existing connection profile
        </label>
        <label>
          <input type="radio" name={`${role}-mode`} checked={mode === 'new'} onChange={() => setMode('new')} /> Create a new connection profile
        </label>
      </div>
      {mode === 'existing' ? (
        <>
          <div className="field">
            <label htmlFor={`${role}-profile`}>{role === 'source' ? 'Source connection profile' : 'Destination connection profile'}</label>
            <select
              id={`${role}-profile`}
              value={selectedId}
              onChange={(e) => {
                onSelect(e.target.value);
                setTest(null);
              }}
            >
              <option value="">Choose a profile…</option>
              {profiles.map((profile) => (
                <option key={profile.id} value={profile.id}>
                  {profileLabel(profile)}
                </option>
              ))}
            </select>
          </div>
          <div className="button-row">
            <button type="button" disabled={selectedId === '' || testing} onClick={() => void testSelected()}>
              {testing ? 'Testing…' : 'Test connection'}
            </button>
          </div>
          <ErrorAlert error={error} />
          {test && <ConnectionTestResult result={test} />}
        </>
      ) : (
        <ProfileForm
          defaultDisplayName={role === 'source' ? 'Source' : 'Destination'}
          onSaved={(profile) => {
            onCreated(profile);
            setMode('existing');
          }}
        />
      )}
    </div>
  );
}

export function CreateJobPage() {
  const profilesPolled = usePolling((signal) => api.listProfiles(signal), 10_000, []);
  const [created, setCreated] = useState<Profile[]>([]);
  const profiles = [...(profilesPolled.data ?? []), ...created.filter((p) => !(profilesPolled.data ?? []).some((q) => q.id === p.id))];

  const [step, setStep] = useState(0);
  const [displayName, setDisplayName] = useState('');
  const [jobId, setJobId] = useState('');
  const [type, setType] = useState<JobType>('one-time');
  const [sourceId, setSourceId] = useState('');
  const [destinationId, setDestinationId] = useState('');
  const [include, setInclude] = useState('');
  const [exclude, setExclude] = useState('');
  const [parallelism, setParallelism] = useState('4');
  /** Empty: the server's default. */
  const [maxParked, setMaxParked] = useState('');
  const [enumPolicy, setEnumPolicy] = useState<'label' | 'null'>('label');
  const [nulPolicy, setNulPolicy] = useState<'refuse' | 'strip'>('refuse');

  const [job, setJob] = useState<Job | null>(null);
  const [report, setReport] = useState<VerifyReport | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);

  const selection = { include: patterns(include), exclude: patterns(exclude) };
  const engineOf = (id: string) => profiles.find((p) => p.id === id)?.engine;
  /** The value policies of docs/type-mapping.md apply to MySQL sources bound for PostgreSQL. */
  const mysqlToPostgres = engineOf(sourceId) === 'mysql' && engineOf(destinationId) === 'postgresql';
  const canNext = [
    displayName.trim() !== '',
    sourceId !== '',
    destinationId !== '' && destinationId !== sourceId,
    Number(parallelism) >= 1 && Number(parallelism) <= 64 && (maxParked.trim() === '' || (Number.isInteger(Number(maxParked)) && Number(maxParked) >= 1)),
    true,
  ];

  /** Creates the job (or, once created, updates its selection and parallelism). */
  const parkedLimit = type === 'continuous' && maxParked.trim() !== '' ? { maxParkedChanges: Number(maxParked) } : {};
  const saveJob = async (): Promise<Job> => {
    if (job) {
      const updated = await api.updateJob(job.id, { displayName: displayName.trim(), selection, dumpParallelism: Number(parallelism), ...parkedLimit });
      setJob(updated);
      return updated;
    }
    const fresh = await api.createJob({
      ...(jobId.trim() ? { id: jobId.trim() } : {}),
      displayName: displayName.trim(),
      type,
      sourceProfileId: sourceId,
      destinationProfileId: destinationId,
      selection,
      dumpParallelism: Number(parallelism),
      ...parkedLimit,
      ...(mysqlToPostgres ? { enumErrorValuePolicy: enumPolicy, nulCharacterPolicy: nulPolicy } : {}),
    });
    setJob(fresh);
    return fresh;
  };

  const verify = async (target: Job) => {
    setBusy('verify');
    setReport(null);
    try {
      setReport(await api.verifyJob(target.id));
      setJob(await api.getJob(target.id));
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(null);
    }
  };

  const createAndVerify = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setBusy('create');
    let target: Job;
    try {
      target = await saveJob();
    } catch (caught) {
      setError(caught);
      setBusy(null);
      return;
    }
    setStep(4);
    await verify(target);
  };

  const createAndStart = async () => {
    setError(null);
    setBusy('start');
    try {
      const target = await saveJob();
      await api.applyJobAction(target.id, 'start');
      navigate(paths.job(target.id));
    } catch (caught) {
      setError(caught);
      setBusy(null);
    }
  };

  const onJobAction = (action: JobAction, failed: Job[]) => {
    if (failed.length > 0 || !job) return;
    if (action === 'delete') navigate(paths.jobs);
    else navigate(paths.job(job.id));
  };

  const next = (event: FormEvent) => {
    event.preventDefault();
    if (canNext[step]) setStep(step + 1);
  };

  return (
    <section className="page">
      <nav className="breadcrumb">
        <Link to={paths.jobs}>Migration jobs</Link> / <span>Create migration job</span>
      </nav>
      <h1>Create migration job</h1>
      <ol className="steps" aria-label="Steps">
        {STEPS.map((name, index) => (
          <li key={name} className={index === step ? 'current' : index < step ? 'done' : undefined} aria-current={index === step ? 'step' : undefined}>
            <span className="step-number">{index + 1}</span> {name}
          </li>
        ))}
      </ol>

      <div className="card">
        {step === 0 && (
          <form className="form" onSubmit={next} aria-label="Get started">
            <div className="form-grid">
              <div className="field">
                <label htmlFor="job-name">Migration job name</label>
                <input id="job-name" required maxLength={200} value={displayName} onChange={(e) => setDisplayName(e.target.value)} />
              </div>
              <div className="field">
                <label htmlFor="job-id">Migration job ID</label>
                <input id="job-id" pattern="[a-z][a-z0-9\-]{0,62}" value={jobId} disabled={job !== null} onChange={(e) => setJobId(e.target.value)} />
                <div className="hint">Lowercase letters, digits and -; generated from the name when empty.</div>
              </div>
              <fieldset className="field" disabled={job !== null}>
                <legend>Migration type</legend>
                <label className="radio">
                  <input type="radio" name="type" checked={type === 'one-time'} onChange={() => setType('one-time')} /> One-time: a full dump, then the job is Completed
                </label>
                <label className="radio">
                  <input type="radio" name="type" checked={type === 'continuous'} onChange={() => setType('continuous')} /> Continuous: a full dump, then change data
                  capture until you promote the destination
                </label>
              </fieldset>
            </div>
            <div className="button-row">
              <button type="submit" className="primary" disabled={!canNext[0]}>
                Next
              </button>
            </div>
          </form>
        )}

        {(step === 1 || step === 2) && (
          // Not a <form>: the profile form inside is one, and forms do not nest.
          <div className="form-steps" role="group" aria-label={STEPS[step]}>
            <h2>{step === 1 ? 'Define the source' : 'Define the destination'}</h2>
            {job && <Alert tone="info">The job exists already: its profiles cannot change. Delete it and create another to use other profiles.</Alert>}
            <ErrorAlert error={profilesPolled.error} title="Could not load the connection profiles" />
            {profilesPolled.data === undefined && profilesPolled.error === null ? (
              <p className="muted">Loading profiles…</p>
            ) : (
              <ProfileStep
                key={step}
                role={step === 1 ? 'source' : 'destination'}
                profiles={step === 2 ? profiles.filter((p) => p.id !== sourceId) : profiles}
                selectedId={step === 1 ? sourceId : destinationId}
                onSelect={(id) => (job ? undefined : step === 1 ? setSourceId(id) : setDestinationId(id))}
                onCreated={(profile) => {
                  setCreated((current) => [...current, profile]);
                  if (!job) (step === 1 ? setSourceId : setDestinationId)(profile.id);
                  profilesPolled.reload();
                }}
              />
            )}
            <div className="button-row">
              <button type="button" onClick={() => setStep(step - 1)}>
                Back
              </button>
              <button type="button" className="primary" disabled={!canNext[step]} onClick={() => setStep(step + 1)}>
                Next
              </button>
            </div>
          </div>
        )}

        {step === 3 && (
          <form className="form" onSubmit={(event) => void createAndVerify(event)} aria-label="Objects">
            <h2>Choose the objects to migrate</h2>
            <p className="muted">
              Leave both lists empty to migrate every table. One pattern per line: <code>schema</code> or <code>schema.table</code>; <code>*</code> matches
              any run of characters. Checking a schema or a table below adds it to Include.
            </p>
            <TablePicker profileId={sourceId} include={include} exclude={exclude} onIncludeChange={setInclude} />
            <div className="form-grid">
              <div className="field">
                <label htmlFor="include">Include</label>
                <textarea id="include" rows={4} value={include} onChange={(e) => setInclude(e.target.value)} placeholder="public&#10;sales.orders_*" />
              </div>
              <div className="field">
                <label htmlFor="exclude">Exclude</label>
                <textarea id="exclude" rows={4} value={exclude} onChange={(e) => setExclude(e.target.value)} placeholder="public.audit_log" />
              </div>
              <div className="field">
                <label htmlFor="parallelism">Dump parallelism</label>
                <input id="parallelism" type="number" min={1} max={64} required value={parallelism} onChange={(e) => setParallelism(e.target.value)} />
                <div className="hint">How many tables are copied at a time, each over its own pair of connections.</div>
              </div>
              {type === 'continuous' && (
                <div className="field">
                  <label htmlFor="max-parked">Max parked changes</label>
                  <input id="max-parked" type="number" min={1} placeholder="1000000" value={maxParked} onChange={(e) => setMaxParked(e.target.value)} />
                  <div className="hint">Changes that may wait for tables the destination refuses (Running with errors) before the job is Failed; a warning at 80 %. Empty: 1,000,000.</div>
                </div>
              )}
              {mysqlToPostgres && (
                <>
                  <div className="field">
                    <label htmlFor="enum-policy">MySQL ENUM error values ('')</label>
                    <select id="enum-policy" value={enumPolicy} disabled={job !== null} onChange={(e) => setEnumPolicy(e.target.value as 'label' | 'null')}>
                      <option value="label">Keep them: add the label '' to the PostgreSQL enum type</option>
                      <option value="null">Write NULL, with a warning naming the column</option>
                    </select>
                  </div>
                  <div className="field">
                    <label htmlFor="nul-policy">NUL characters in text</label>
                    <select id="nul-policy" value={nulPolicy} disabled={job !== null} onChange={(e) => setNulPolicy(e.target.value as 'refuse' | 'strip')}>
                      <option value="refuse">Fail the job, naming the table, column and row</option>
                      <option value="strip">Remove them, with a warning naming the column</option>
                    </select>
                    <div className="hint">PostgreSQL text cannot hold them. Verify samples the source and names the columns that hold such values.</div>
                  </div>
                </>
              )}
            </div>
            <ErrorAlert error={error} title="The job could not be saved" />
            <div className="button-row">
              <button type="button" onClick={() => setStep(2)} disabled={busy !== null}>
                Back
              </button>
              <button type="submit" className="primary" disabled={busy !== null || !canNext[3]}>
                {busy === 'create' ? 'Creating…' : job ? 'Save and verify' : 'Create and verify'}
              </button>
              <button type="button" onClick={() => void createAndStart()} disabled={busy !== null || !canNext[3]}>
                {busy === 'start' ? 'Starting…' : job ? 'Save and start' : 'Create and start'}
              </button>
            </div>
          </form>
        )}

        {step === 4 && (
          <div className="verify-step" data-testid="verify-step">
            <h2>Verify the migration job</h2>
            {job && (
              <p>
                Migration job <Link to={paths.job(job.id)}>{job.displayName}</Link> (<code>{job.id}</code>) is created:{' '}
                <StatusBadge status={job.status} label={job.statusLabel} />
              </p>
            )}
            {busy === 'verify' && <p className="muted">Verifying: Ferry connects to both databases and checks everything that would make the job fail…</p>}
            <ErrorAlert error={error} />
            {report && (
              <div data-testid="verify-report" data-ok={report.ok}>
                {report.ok ? (
                  <Alert tone="success" title="Verification passed">
                    {report.checks.some((c) => c.severity === 'warning')
                      ? 'No check failed; read the warnings below before starting.'
                      : 'Every check passed: the job is ready to start.'}
                  </Alert>
                ) : (
                  <Alert tone="error" title="Verification failed">
                    {report.checks.filter((c) => c.severity === 'error').length} checks failed. Fix what they say, then verify again, or delete the job.
                  </Alert>
                )}
                <CheckList checks={report.checks} />
              </div>
            )}
            {job && busy === null && (
              <>
                <h3>Next</h3>
                <JobActionButtons jobs={[job]} onDone={onJobAction} />
                <div className="button-row">
                  <button type="button" onClick={() => void verify(job)}>
                    Verify again
                  </button>
                  <button type="button" onClick={() => setStep(3)}>
                    Change objects or parallelism
                  </button>
                </div>
              </>
            )}
          </div>
        )}
      </div>
    </section>
  );
}
