/** The console's frame: navigation, the page for the current path, and the login page when the API answers 401. */
import { useEffect, useState } from 'react';
import { clearToken, onUnauthorized, storedToken } from './api/client';
import { CreateJobPage } from './pages/create-job-page';
import { JobDetailsPage } from './pages/job-details-page';
import { JobsListPage } from './pages/jobs-list-page';
import { LoginPage } from './pages/login-page';
import { NodesPage } from './pages/nodes-page';
import { CreateProfilePage, ProfilePage, ProfilesListPage } from './pages/profiles-pages';
import { Link, navigate, paths, useLocation } from './lib/router';

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function Page({ pathname }: { pathname: string }) {
  let match: RegExpExecArray | null;
  if (pathname === paths.jobs) return <JobsListPage />;
  if (pathname === paths.createJob) return <CreateJobPage />;
  if ((match = /^\/jobs\/([^/]+)$/.exec(pathname))) return <JobDetailsPage key={match[1]} id={decode(match[1]!)} />;
  if (pathname === paths.profiles) return <ProfilesListPage />;
  if (pathname === paths.createProfile) return <CreateProfilePage />;
  if ((match = /^\/profiles\/([^/]+)$/.exec(pathname))) return <ProfilePage key={match[1]} id={decode(match[1]!)} />;
  if (pathname === paths.nodes) return <NodesPage />;
  return (
    <section className="page">
      <h1>Page not found</h1>
      <p>
        There is no console page at <code>{pathname}</code>. Go to the <Link to={paths.jobs}>migration jobs</Link>.
      </p>
    </section>
  );
}

export function App() {
  const { pathname } = useLocation();
  const [needsLogin, setNeedsLogin] = useState(false);
  const [hasToken, setHasToken] = useState(storedToken() !== null);
  // Bumped on sign-in so that every page loads again with the token.
  const [session, setSession] = useState(0);

  useEffect(() => onUnauthorized(() => setNeedsLogin(true)), []);
  useEffect(() => {
    if (pathname === '/' || pathname === '') navigate(paths.jobs, { replace: true });
  }, [pathname]);

  const signOut = () => {
    clearToken();
    setHasToken(false);
    setSession((n) => n + 1);
  };
  const section = pathname.startsWith('/profiles') || pathname === paths.createProfile ? 'profiles' : pathname === paths.nodes ? 'nodes' : 'jobs';

  return (
    <div className="app">
      <header className="topbar">
        <Link to={paths.jobs} className="brand">
          <img src="/favicon.svg" alt="" width={24} height={24} /> Ferry
        </Link>
        {!needsLogin && (
          <nav className="nav" aria-label="Main">
            <Link to={paths.jobs} className={section === 'jobs' ? 'active' : undefined} aria-current={section === 'jobs' ? 'page' : undefined}>
              Migration jobs
            </Link>
            <Link to={paths.profiles} className={section === 'profiles' ? 'active' : undefined} aria-current={section === 'profiles' ? 'page' : undefined}>
              Connection profiles
            </Link>
            <Link to={paths.nodes} className={section === 'nodes' ? 'active' : undefined} aria-current={section === 'nodes' ? 'page' : undefined}>
              Nodes
            </Link>
          </nav>
        )}
        <span className="spacer" />
        {hasToken && !needsLogin && (
          <button type="button" className="link-button topbar-button" onClick={signOut}>
            Sign out
          </button>
        )}
      </header>
      <main>
        {needsLogin ? (
          <LoginPage
            onSignedIn={() => {
              setNeedsLogin(false);
              setHasToken(true);
              setSession((n) => n + 1);
            }}
          />
        ) : (
          <Page key={session} pathname={pathname} />
        )}
      </main>
    </div>
  );
}
