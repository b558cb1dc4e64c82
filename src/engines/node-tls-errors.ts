/** Error codes Node's TLS layer uses for certificate and handshake failures, whatever the driver. */
export const NODE_TLS_ERROR_CODES: ReadonlySet<string> = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'EPROTO',
]);

/** Which TLS check failed: shown in an error's details as `tlsProblem`. */
export type TlsProblem =
  | 'untrusted-certificate'
  | 'host-name-mismatch'
  | 'certificate-expired'
  | 'client-certificate-rejected'
  | 'client-certificate-required'
  | 'server-without-tls'
  | 'tls-required-by-server'
  | 'invalid-pem'
  | 'handshake-failed';

const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
]);

/**
 * What a TLS failure means and what to do about it, from Node's error code and message
 * (the same for every driver). `host` is the name the certificate was checked against.
 */
export function describeTlsFailure(code: string, message: string, host: string): { problem: TlsProblem; advice: string } {
  // Some drivers replace Node's code with their own (mysql2: HANDSHAKE_SSL_ERROR): the message still says which check failed.
  if (UNTRUSTED.has(code) || /unable to verify the first certificate|self[- ]signed certificate|unable to get (local )?issuer certificate|certificate (is )?not trusted/i.test(message)) {
    return {
      problem: 'untrusted-certificate',
      advice: `The server's certificate is not signed by the CA in the connection profile (${message}): put the PEM of the CA that signed it in tls.caCertificate, or use TLS mode "required" to encrypt without verifying the server.`,
    };
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || /does not match certificate's altnames/i.test(message)) {
    return {
      problem: 'host-name-mismatch',
      advice: `The server's certificate is not valid for the host name "${host}" (${message}): connect by a name the certificate lists, or have the certificate reissued with "${host}" in its subject alternative names.`,
    };
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID' || /certificate has expired|certificate is not yet valid/i.test(message)) {
    return { problem: 'certificate-expired', advice: `The server's certificate is outside its validity period (${message}): renew it on the server, or check this machine's clock.` };
  }
  if (/^ERR_OSSL_|PEM|no start line|bad decrypt|wrong tag/i.test(code) || /PEM|no start line|bad base64/i.test(message)) {
    return { problem: 'invalid-pem', advice: `A certificate or key in the connection profile could not be read (${message}): give each as PEM text (-----BEGIN ...-----), the key unencrypted.` };
  }
  if (/alert (unknown ca|bad certificate|certificate unknown|certificate required|handshake failure)|certificate required/i.test(message)) {
    return {
      problem: 'client-certificate-rejected',
      advice: `The server refused the TLS handshake (${message}): with TLS mode "server-client", give a client certificate and key signed by a CA the server trusts; the server may require a client certificate for this user.`,
    };
  }
  return {
    problem: 'handshake-failed',
    advice: `The TLS handshake failed (${message}): check the TLS mode, the CA certificate, and the client certificate and key in the connection profile, and the server's TLS settings.`,
  };
}
