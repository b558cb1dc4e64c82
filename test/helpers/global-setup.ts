/**
 * Vitest global setup: compiles Ferry once (`npm run build`: src/ to dist/, plus the .sql
 * assets) before any test file runs, so the end-to-end tests drive the current code through
 * `node bin/ferry.js`. Set FERRY_SKIP_BUILD=1 to reuse an existing dist/.
 */
import { execSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function setup(): void {
  if (process.env.FERRY_SKIP_BUILD === '1') return;
  const started = Date.now();
  try {
    execSync('npm run build', { cwd: root, stdio: 'pipe', encoding: 'utf8' });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`npm run build failed, so the tests cannot run the compiled Ferry:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
  process.stdout.write(`global setup: npm run build took ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}
