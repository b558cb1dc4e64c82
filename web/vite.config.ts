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
    // Ferry answers only to its own Host and refuses state-changing requests from other
    // origins: the proxy presents the dev server's own pages as Ferry's (and no other page).
    proxy: Object.fromEntries(
      ['/v1', '/openapi.json', '/healthz'].map((path) => [
        path,
        {
          target: apiServer,
          changeOrigin: true,
          configure: (proxy) => {
            proxy.on('proxyReq', (proxyReq, req) => {
              if (req.headers.origin === `http://${req.headers.host}`) proxyReq.setHeader('origin', new URL(apiServer).origin);
            });
          },
        },
      ]),
    ),
  },
});
