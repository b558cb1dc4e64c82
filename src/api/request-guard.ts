/**
 * What keeps other web pages from driving the API through the user's browser: the Host header
 * must name this server (DNS rebinding), a state-changing request must not come from a page of
 * another origin (Origin, Sec-Fetch-Site), and a POST, PATCH or PUT must be JSON (a page cannot
 * send "Content-Type: application/json" to another origin without a CORS preflight, which this
 * server never grants). Pure checks on headers: api-server.ts runs them before any handler.
 */
import { isIP } from 'node:net';
import { FerryError } from '../core/errors.js';

/** Methods that change state: they must come from this server's own pages or from a non-browser client. */
export const STATE_CHANGING_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Methods whose body must be JSON with "Content-Type: application/json". */
export const JSON_BODY_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH']);

export interface HostRule {
  /** The address the server listens on (`--host`): 127.0.0.1, ::1, 0.0.0.0, a LAN address, a name. */
  listenHost: string;
  /** The port it listens on. */
  port: number;
  /**
   * More names the server answers to (`--allowed-host`, FERRY_ALLOWED_HOSTS), e.g. the name a
   * reverse proxy forwards. "name" allows that name on any port; "name:port" only on that port.
   */
  allowedHosts?: readonly string[];
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]', '']);

/** "Name", "name:8080", "[::1]:8080" -> lowercase host and port (null when absent); null when malformed. */
export function splitHost(value: string): { host: string; port: number | null } | null {
  const match = /^(\[[0-9a-f:.]+\]|[^:[\]\s/]+)(?::(\d{1,5}))?$/.exec(value.trim().toLowerCase());
  if (!match) return null;
  const port = match[2] === undefined ? null : Number(match[2]);
  if (port !== null && port > 65535) return null;
  return { host: match[1]!, port };
}

function bracketed(host: string): string {
  const bare = host.toLowerCase();
  return bare.includes(':') && !bare.startsWith('[') ? `[${bare}]` : bare;
}

function isIpLiteral(host: string): boolean {
  return isIP(host.replace(/^\[|\]$/g, '')) !== 0;
}

/** Validates --allowed-host values; throws INVALID_ARGUMENT naming the bad one. */
export function parseAllowedHosts(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of values) {
    const value = raw.trim();
    if (value === '') continue;
    const parsed = splitHost(value.includes(':') && !value.startsWith('[') && isIP(value) === 6 ? `[${value}]` : value);
    if (parsed === null) {
      throw new FerryError(
        'INVALID_ARGUMENT',
        `--allowed-host "${raw}" is not a host name: give a name such as ferry.example.com, optionally with a port (ferry.example.com:8443).`,
      );
    }
    out.push(parsed.port === null ? parsed.host : `${parsed.host}:${parsed.port}`);
  }
  return out;
}

/**
 * Decides whether a Host header names this server: the listen address, localhost, 127.0.0.1
 * or [::1] with the listen port; on a wildcard listen address (0.0.0.0, ::) any IP address
 * with that port (an address cannot be rebound to another server); or an allowed host.
 */
export function hostAllowed(hostHeader: string | undefined, rule: HostRule): boolean {
  if (hostHeader === undefined) return false;
  const parsed = splitHost(hostHeader);
  if (parsed === null) return false;
  // A browser leaves out the port only when it is the scheme's default.
  const portMatches = parsed.port === rule.port || (parsed.port === null && rule.port === 80);
  if (portMatches) {
    const own = new Set([bracketed(rule.listenHost), 'localhost', '127.0.0.1', '[::1]']);
    if (own.has(parsed.host)) return true;
    if (WILDCARD_HOSTS.has(rule.listenHost.toLowerCase()) && isIpLiteral(parsed.host)) return true;
  }
  for (const allowed of rule.allowedHosts ?? []) {
    const entry = splitHost(allowed);
    if (entry === null || entry.host !== parsed.host) continue;
    if (entry.port === null || entry.port === parsed.port) return true;
  }
  return false;
}

/** The 403 for a Host this server does not answer to. */
export function checkHost(hostHeader: string | undefined, rule: HostRule): FerryError | null {
  if (hostAllowed(hostHeader, rule)) return null;
  const listen = `${bracketed(rule.listenHost)}:${rule.port}`;
  const shown = hostHeader === undefined ? 'no Host header' : `Host "${hostHeader.slice(0, 200)}"`;
  return new FerryError(
    'PERMISSION_DENIED',
    `Refused a request for ${shown}: this Ferry server answers only to ${listen}, localhost:${rule.port}, 127.0.0.1:${rule.port} and [::1]:${rule.port}` +
      `${rule.allowedHosts && rule.allowedHosts.length > 0 ? ` and ${rule.allowedHosts.join(', ')}` : ''}, so that a web page cannot reach it through a name of its own (DNS rebinding). ` +
      'Use one of those addresses, or start the server with --allowed-host NAME (or FERRY_ALLOWED_HOSTS) for the name you use, e.g. behind a reverse proxy.',
    { details: { reason: 'HOST_NOT_ALLOWED', host: hostHeader ?? null } },
  );
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The 403 for a state-changing request from a page of another origin: its Origin is not
 * this server's (the scheme's host and port against the Host header), or, without Origin, its
 * Sec-Fetch-Site says cross-site. Requests with neither header (the CLI, curl) pass.
 */
export function checkOrigin(method: string, headers: Record<string, string | string[] | undefined>): FerryError | null {
  if (!STATE_CHANGING_METHODS.has(method.toUpperCase())) return null;
  const host = (headerValue(headers['host']) ?? '').toLowerCase();
  const origin = headerValue(headers['origin']);
  if (origin !== undefined) {
    let originHost: string | null = null;
    try {
      const url = new URL(origin);
      if (url.protocol === 'http:' || url.protocol === 'https:') originHost = url.host.toLowerCase();
    } catch {
      originHost = null;
    }
    if (originHost !== null && originHost === host) return null;
    return new FerryError(
      'PERMISSION_DENIED',
      `Refused a cross-site ${method} request: it comes from a page at ${JSON.stringify(origin.slice(0, 200))}, not from this server's own console (http://${host}). ` +
        'Ferry takes state-changing requests only from its console, the ferry CLI and clients that send no Origin header (curl, scripts); ' +
        'open the console from this server, or call the API from a script.',
      { details: { reason: 'CROSS_ORIGIN', origin: origin.slice(0, 200) } },
    );
  }
  const site = headerValue(headers['sec-fetch-site']);
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return new FerryError(
      'PERMISSION_DENIED',
      `Refused a ${method} request that the browser marks as ${JSON.stringify(site.slice(0, 40))} (Sec-Fetch-Site): only this server's own console may change state from a browser. ` +
        'Open the console from this server, or call the API from a script.',
      { details: { reason: 'CROSS_SITE', secFetchSite: site.slice(0, 40) } },
    );
  }
  return null;
}

/** The 415 for a POST, PATCH or PUT that is not sent as JSON. */
export function checkContentType(method: string, contentType: string | undefined): FerryError | null {
  if (!JSON_BODY_METHODS.has(method.toUpperCase())) return null;
  const mediaType = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (mediaType === 'application/json') return null;
  return new FerryError(
    'UNSUPPORTED_MEDIA_TYPE',
    contentType === undefined || contentType.trim() === ''
      ? `A ${method} request needs "Content-Type: application/json" and a JSON body: send {} when the operation takes no input (the ferry CLI and the console do). Other web pages cannot send this header, so this is what keeps them out.`
      : `Unsupported Content-Type ${JSON.stringify(contentType.slice(0, 100))}: send JSON with "Content-Type: application/json" (send {} when the operation takes no input).`,
    { details: { contentType: contentType?.slice(0, 100) ?? null } },
  );
}
