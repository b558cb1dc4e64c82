#!/usr/bin/env node
// The `ferry` command. The build (npm run build) compiles src/ to dist/.
import { buildCli } from '../dist/cli/cli.js';

await buildCli().parseAsync(process.argv);
