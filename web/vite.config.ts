/**
 * Builds the console (web/) into web/dist, which `ferry serve` serves at /
 * (src/api/console-assets.ts). `npm run console:dev` serves it with hot reload and sends API
 * calls to a `ferry serve` on 127.0.0.1:8080.
 */
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const apiServer = process.env.FERRY_SERVER ?? 'http://127.0.0.1:8080';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
  },
  server: {
    proxy: {
      '/v1': apiServer,
      '/openapi.json': apiServer,
      '/healthz': apiServer,
    },
  },
});
