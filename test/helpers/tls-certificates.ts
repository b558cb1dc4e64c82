/**
 * The test certificates `scripts/setup-test-env.sh` makes in /var/lib/postgresql/ferry-tls:
 * a CA, a server certificate for localhost and 127.0.0.1 (not 127.0.0.2), a client
 * certificate for the role ferry_tls_cert, and an unrelated CA. The TLS-only PostgreSQL
 * cluster "ferrytls" listens on 127.0.0.1 and 127.0.0.2, port FERRY_TEST_PG_TLS_PORT (5436).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const TLS_DIR = process.env.FERRY_TEST_TLS_DIR ?? '/var/lib/postgresql/ferry-tls';
export const PG_TLS_PORT = Number(process.env.FERRY_TEST_PG_TLS_PORT ?? 5436);
/** The role that must present a client certificate (pg_hba: clientcert=verify-full). */
export const PG_CERT_USER = 'ferry_tls_cert';

export interface TestCertificates {
  dir: string;
  ca: string;
  otherCa: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

export function readTestCertificates(): TestCertificates {
  const file = (name: string) => {
    const path = join(TLS_DIR, name);
    if (!existsSync(path)) throw new Error(`${path} is missing: run scripts/setup-test-env.sh (as root) to make the test certificates and the TLS cluster.`);
    return readFileSync(path, 'utf8');
  };
  return {
    dir: TLS_DIR,
    ca: file('ca.crt'),
    otherCa: file('other-ca.crt'),
    serverCert: file('server.crt'),
    serverKey: file('server.key'),
    clientCert: file('client.crt'),
    clientKey: file('client.key'),
  };
}
