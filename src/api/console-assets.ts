/**
 * Serves the web console (the static files `vite build` writes to web/dist) at /, on the
 * API's server. Any GET that is not a file and not one of the server's own paths answers
 * index.html, so that the console's client-side routes (/jobs/ID) survive a reload. The
 * server's paths (/v1, /openapi.json, /healthz, /metrics) are never answered here.
 *
 * The files are not secret (the API is what the token protects), so they need no token:
 * the console shows its login page when the API answers 401.
 */
import { readFile, stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** web/dist, from dist/api/console-assets.js and from src/api/console-assets.ts alike. */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../../web/dist/', import.meta.url));

/** Paths that belong to the server, never to the console. */
const SERVER_PATHS = ['/v1', '/openapi.json', '/healthz', '/metrics'] as const;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The console only talks to its own origin. style-src allows inline style attributes, which
 * React sets for widths and colours.
 */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Ferry: console not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>Ferry: console not built</h1>
<p>Console not built: run <code>npm run build</code> in Ferry's directory, then reload this page.</p>
<p>The REST API works without it: <a href="/openapi.json">/openapi.json</a> lists every route, and the <code>ferry</code> CLI uses it.</p>
</body>
</html>
`;

export interface ConsoleAssetsOptions {
  /** The directory holding the built console (index.html and assets/). Default: web/dist. */
  root?: string;
}

function isServerPath(path: string): boolean {
  return SERVER_PATHS.some((prefix) => path === prefix || path.startsWith(`${prefix}/`) || path.startsWith(`${prefix}:`));
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Registers GET / and GET /* for the console. Call after the API's routes (buildApiServer's extraRoutes). */
export function registerConsoleAssets(app: FastifyInstance, options: ConsoleAssetsOptions = {}): void {
  const root = resolve(options.root ?? DEFAULT_CONSOLE_DIR);
  const indexFile = join(root, 'index.html');

  const send = async (reply: FastifyReply, file: string, immutable: boolean) => {
    const body = await readFile(file);
    const type = CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
    void reply.header('content-type', type);
    // Vite puts a content hash in every name under assets/: those never change. index.html must
    // be fetched again so that a new build is picked up.
    void reply.header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    if (type.startsWith('text/html')) void reply.headers(SECURITY_HEADERS);
    else void reply.header('x-content-type-options', 'nosniff');
    return reply.send(body);
  };

  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const rawPath = request.url.split('?')[0] ?? '/';
    let path: string;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      return reply.callNotFound();
    }
    if (isServerPath(path) || isServerPath(rawPath) || path.includes('\0')) return reply.callNotFound();

    if (!(await isFile(indexFile))) {
      return reply.code(503).header('content-type', 'text/html; charset=utf-8').header('cache-control', 'no-store').send(NOT_BUILT_PAGE);
    }

    const file = resolve(root, `.${path}`);
    const inside = file === root || file.startsWith(`${root}${sep}`);
    if (inside && file !== root && (await isFile(file))) {
      return send(reply, file, file.startsWith(`${join(root, 'assets')}${sep}`));
    }
    // A path that names a file (it has an extension) and does not exist is a 404, not the
    // console: a missing script must not be answered with HTML.
    const lastSegment = path.slice(path.lastIndexOf('/') + 1);
    if (!inside || lastSegment.includes('.')) return reply.callNotFound();
    return send(reply, indexFile, false);
  };

  app.get('/', handler);
  app.get('/*', handler);
}
