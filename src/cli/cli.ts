/**
 * The `ferry` command line: `serve` runs the server; every other command is a thin client
 * of the REST API (api-client.ts). Tables for people, `--output json` for scripts.
 *
 * Exit codes: 0 success; 1 the API refused or the operation failed (printed as
 * "error: <CODE>: <message>"); 2 the command line itself is wrong.
 */
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { isFerryError } from '../core/errors.js';
import { leftOutDefinitionsSql } from '../core/schema-object-plan.js';
import { JOB_STATUSES } from '../core/lifecycle.js';
import { DEFAULT_MAX_PARKED_CHANGES } from '../core/migration-job.js';
import type { JobAction } from '../core/lifecycle.js';
import type { CreateJobInput, CreateProfileInput, JobView, UpdateProfileInput } from '../service/inputs.js';
import type { TokenService } from '../service/token-service.js';
import { ApiClient, ApiClientError } from './api-client.js';
import { renderValidation, renderValidationList } from './validation-format.js';
import {
  formatTime,
  renderConnectionTest,
  renderJobDetails,
  renderJobsTable,
  renderProfileDetails,
  renderProfilesTable,
  renderSchemaObjects,
  renderTable,
  renderVerifyReport,
  renderWatchFrame,
  statusText,
} from './format.js';

/**
 * Commander reports the first missing required option only; a user who left out three would
 * need three attempts. This command names them all at once.
 */
class FerryCommand extends Command {
  override createCommand(name?: string): FerryCommand {
    return new FerryCommand(name);
  }

  missingMandatoryOptionValue(): never {
    const missing = this.options
      .filter((option) => option.mandatory && this.getOptionValue(option.attributeName()) === undefined)
      .map((option) => `'${option.flags}'`);
    const list = missing.length <= 1 ? missing.join('') : `${missing.slice(0, -1).join(', ')} and ${missing[missing.length - 1]}`;
    this.error(`error: required option${missing.length > 1 ? 's' : ''} ${list} not specified`, { code: 'commander.missingMandatoryOptionValue' });
  }
}

/** Where the CLI reads and writes; the real process by default, replaceable in tests. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** True when stdout is a terminal: watch redraws in place and bars use block characters. */
  isTTY: boolean;
  /** All of standard input (for --password-stdin). */
  readStdin: () => Promise<string>;
  /** Ends the process (usage errors, serve shutdown). */
  exit: (code: number) => void;
  /**
   * Asks a yes/no question on the terminal; null when standard input is not a terminal
   * (scripts: no question is asked, as with --yes).
   */
  confirm: (question: string) => Promise<boolean | null>;
}

/** A mistake on the command line that commander cannot see (exit code 2). */
class UsageError extends Error {
  override readonly name = 'UsageError';
}

type OutputFormat = 'table' | 'json';
interface ClientOptions {
  server?: string;
  output: OutputFormat;
}

function packageVersion(): string {
  try {
    // dist/cli/cli.js and src/cli/cli.ts both sit two levels below package.json.
    const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return manifest.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** y/yes (any case) is yes; anything else, or end of input, is no. Null without a terminal. */
async function askOnTerminal(question: string): Promise<boolean | null> {
  if (process.stdin.isTTY !== true) return null;
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

async function readAllStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

// ---------------------------------------------------------------------------------------
// Option parsers (commander reports their errors as usage errors)

function parseInteger(min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}.`);
    const number = Number(value);
    if (number < min || number > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}.`);
    return number;
  };
}

function parseSeconds(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number < 0.2 || number > 3600) throw new InvalidArgumentError('expected seconds from 0.2 to 3600.');
  return number;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A repeatable option whose values may also be comma-separated: --objects a.b,c.d --objects e.f. */
function collectList(value: string, previous: string[] | undefined): string[] {
  const items = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new InvalidArgumentError('expected one or more names, comma-separated (e.g. public.orders,public.items).');
  return [...(previous ?? []), ...items];
}

function collectLabel(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const equals = value.indexOf('=');
  if (equals <= 0) throw new InvalidArgumentError('expected key=value, e.g. --label env=prod.');
  return { ...(previous ?? {}), [value.slice(0, equals)]: value.slice(equals + 1) };
}

/** `--map-schema SRC=DST`, split at the first "=". */
function collectSchemaPair(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const equals = value.indexOf('=');
  if (equals <= 0 || equals === value.length - 1) throw new InvalidArgumentError('expected SRC=DST with both names, e.g. --map-schema public=app.');
  const source = value.slice(0, equals);
  if (previous !== undefined && Object.hasOwn(previous, source)) throw new InvalidArgumentError(`"${source}" is mapped twice; give each source schema one --map-schema.`);
  return { ...(previous ?? {}), [source]: value.slice(equals + 1) };
}

const ENGINE_ALIASES: Record<string, CreateProfileInput['engine']> = {
  postgresql: 'postgresql',
  postgres: 'postgresql',
  pg: 'postgresql',
  mysql: 'mysql',
  mariadb: 'mysql',
};

function parseEngine(value: string): CreateProfileInput['engine'] {
  const engine = ENGINE_ALIASES[value.toLowerCase()];
  if (engine === undefined) throw new InvalidArgumentError('expected postgresql or mysql (MariaDB is mysql).');
  return engine;
}

/** "running,failed" or "RUNNING_WITH_ERRORS" or "running-with-errors" -> API status names. */
function parseStatuses(value: string): string[] {
  const statuses = value
    .split(',')
    .map((s) => s.trim().toUpperCase().replace(/[-\s]+/g, '_').replace(/\.+$/, ''))
    .filter((s) => s !== '');
  for (const status of statuses) {
    if (!(JOB_STATUSES as readonly string[]).includes(status)) {
      throw new InvalidArgumentError(`unknown status "${status}"; use one of ${JOB_STATUSES.join(', ')} (comma-separated).`);
    }
  }
  return statuses;
}

// ---------------------------------------------------------------------------------------

/**
 * Builds the `ferry` program. `bin/ferry.js` runs `buildCli().parseAsync(process.argv)`.
 * Errors from the API set the exit code 1; command-line mistakes exit with 2.
 */
export function buildCli(overrides: Partial<CliIo> = {}): Command {
  const io: CliIo = {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    env: process.env,
    isTTY: process.stdout.isTTY === true,
    readStdin: readAllStdin,
    confirm: askOnTerminal,
    exit: (code) => process.exit(code),
    ...overrides,
  };
  const print = (text: string) => io.stdout(text.endsWith('\n') ? text : `${text}\n`);
  const printJson = (value: unknown) => print(JSON.stringify(value ?? {}, null, 2));

  const program = new FerryCommand('ferry');
  program
    .version(packageVersion(), '-V, --version', 'print the version of Ferry')
    .description('Ferry: move a live database to a new server with a consistent full dump and change data capture.')
    .configureOutput({ writeOut: (text) => io.stdout(text), writeErr: (text) => io.stderr(text) })
    .showHelpAfterError('(add --help for usage)')
    // Commander's own errors are all command-line mistakes: exit 2 (help and --version: 0).
    .exitOverride((error) => {
      io.exit(error.exitCode === 0 ? 0 : 2);
      // Only reached when io.exit does not end the process (tests).
      throw error;
    });

  /** Runs an action: API and operation errors become "error: CODE: message" and exit code 1. */
  const run =
    <A extends unknown[]>(action: (...args: A) => Promise<number | void>) =>
    async (...args: A): Promise<void> => {
      try {
        const code = await action(...args);
        if (typeof code === 'number' && code !== 0) process.exitCode = code;
      } catch (error) {
        if (error instanceof UsageError) {
          io.stderr(`error: ${error.message}\n(add --help for usage)\n`);
          process.exitCode = 2;
          return;
        }
        if (isFerryError(error)) {
          // Commands that work on the data directory directly (tokens, keys, set-password --data-dir, serve).
          io.stderr(`error: ${error.code}: ${error.message}\n`);
        } else if (error instanceof ApiClientError) {
          io.stderr(`error: ${error.code}: ${error.message}\n`);
          const fields = error.details['fields'];
          if (Array.isArray(fields)) {
            for (const field of fields as { path?: string; message?: string }[]) io.stderr(`  ${field.path || '(body)'}: ${field.message}\n`);
          }
        } else {
          io.stderr(`error: INTERNAL: ${error instanceof Error ? error.message : String(error)}\n`);
        }
        process.exitCode = 1;
      }
    };

  /** A subcommand that talks to the server: --server and --output on each. */
  const clientCommand = (parent: Command, name: string, description: string): Command =>
    parent
      .command(name)
      .description(description)
      .option('--server <url>', 'Ferry server URL (default: $FERRY_SERVER, else http://127.0.0.1:8080)')
      .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'));

  const clientOf = (options: ClientOptions) => new ApiClient({ server: options.server, env: io.env });

  /** --store / FERRY_STORE_URL: a PostgreSQL metadata store instead of the data directory's SQLite one. */
  const storeOption = () =>
    new Option('--store <url>', 'metadata store shared by several servers: postgresql://user[:password]@host[:port]/database (default: SQLite in the data directory)').env('FERRY_STORE_URL');
  const storeUrlOf = (options: { store?: string }): string | null => (options.store === undefined || options.store === '' ? null : options.store);

  // ---------------------------------------------------------------------------------
  // serve

  program
    .command('serve')
    .description('Run the Ferry server: REST API, web console and migration workers in one process.')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on', parseInteger(0, 65535), 8080)
    .addOption(new Option('--data-dir <dir>', 'where Ferry keeps its secret key (and its metadata, without --store)').env('FERRY_DATA_DIR').default('./.ferry'))
    .addOption(storeOption())
    .addOption(new Option('--node-id <id>', "this server's id among the nodes of its store (default: <host name>:<port>)").env('FERRY_NODE_ID'))
    .addOption(
      new Option('--lease-seconds <seconds>', "how long a job's lease lasts from its last renewal: another node takes a job over about this long after its node died (every node of a store alike)")
        .env('FERRY_LEASE_SECONDS').argParser(parseSeconds).default(15),
    )
    .addOption(new Option('--max-jobs <count>', 'run at most this many jobs on this node (default: no limit)').env('FERRY_MAX_JOBS').argParser(parseInteger(1, 100_000)))
    .option(
      '--allowed-host <name>',
      'another host name the API answers to, e.g. behind a reverse proxy (repeatable; also FERRY_ALLOWED_HOSTS, comma-separated)',
      collect,
    )
    .action(
      run(async (options: { host: string; port: number; dataDir: string; store?: string; nodeId?: string; leaseSeconds: number; maxJobs?: number; allowedHost?: string[] }) => {
        // Loaded on demand so that client commands do not load the server.
        const { startFerryServer, redactStoreUrl } = await import('../main.js');
        // Bounded memory (docs/ARCHITECTURE.md, "Memory of ferry serve"): a process-level setting, so here and not in startFerryServer.
        (await import('../heap-growth.js')).limitHeapGrowth();
        const dataDir = path.resolve(options.dataDir);
        const allowedHosts = [...(io.env['FERRY_ALLOWED_HOSTS'] ?? '').split(','), ...(options.allowedHost ?? [])].filter((h) => h.trim() !== '');
        const server = await startFerryServer({
          host: options.host,
          port: options.port,
          dataDir,
          ...(storeUrlOf(options) === null ? {} : { storeUrl: storeUrlOf(options)! }),
          ...(options.nodeId === undefined || options.nodeId === '' ? {} : { nodeId: options.nodeId }),
          leaseSeconds: options.leaseSeconds,
          maxJobs: options.maxJobs ?? null,
          allowedHosts,
          onFatalError: (error) => {
            io.stderr(`error: ${error.code}: ${error.message}\n`);
            io.exit(1);
          },
        });
        io.stderr(`Ferry is serving at ${server.url} (${storeUrlOf(options) === null ? `data in ${dataDir}` : `metadata in ${redactStoreUrl(storeUrlOf(options)!)}, secret key in ${dataDir}`}). Press Ctrl-C to stop.\n`);
        const shutdown = (signal: NodeJS.Signals) => {
          io.stderr(`Received ${signal}: stopping (running jobs save their checkpoint and resume on the next start)...\n`);
          // A second signal does not wait for a clean stop.
          process.once('SIGINT', () => io.exit(130));
          process.once('SIGTERM', () => io.exit(143));
          server.close().then(
            () => io.exit(0),
            (error: unknown) => {
              io.stderr(`error: INTERNAL: stopping failed: ${error instanceof Error ? error.message : String(error)}\n`);
              io.exit(1);
            },
          );
        };
        process.once('SIGINT', shutdown);
        process.once('SIGTERM', shutdown);
      }),
    );

  // ---------------------------------------------------------------------------------
  // demo

  program
    .command('demo')
    .description('Show the whole product without a database at hand: two throwaway PostgreSQL servers, a shop database under a live write load, Ferry and a continuous job between them. Ctrl-C removes everything.')
    .option('--port <port>', 'port of the API and console (0: any free port)', parseInteger(0, 65535), 8080)
    .option('--postgres <major>', 'major version of the throwaway servers (an installed pgNN package: 12-14, 16-18; default: the newest that the local pg_dump reads)', parseInteger(12, 18))
    .action(
      run(async (options: { port: number; postgres?: number }) => {
        const { startDemo } = await import('../demo/demo.js');
        const say = (line: string) => io.stdout(`${line}\n`);
        const demo = await startDemo({ port: options.port, ...(options.postgres === undefined ? {} : { major: options.postgres }), say });
        await new Promise<void>((resolveStop) => {
          const shutdown = () => {
            say('Stopping the demo: the write load, Ferry and both servers; removing their directories...');
            process.once('SIGINT', () => io.exit(130));
            demo.stop().then(() => {
              say('Removed everything the demo made.');
              resolveStop();
            }, (error: unknown) => {
              io.stderr(`error: INTERNAL: stopping the demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
              resolveStop();
            });
          };
          process.once('SIGINT', shutdown);
          process.once('SIGTERM', shutdown);
        });
        io.exit(0);
      }),
    );

  // ---------------------------------------------------------------------------------
  // profiles

  const profiles = program.command('profiles').description('Manage connection profiles: named, reusable ways to reach a database.');

  /** --password, --password-stdin, FERRY_PASSWORD: the first that is given. */
  const passwordOf = async (options: { password?: string; passwordStdin?: boolean }): Promise<string | undefined> => {
    if (options.passwordStdin) {
      if (options.password !== undefined) throw new UsageError('use either --password or --password-stdin, not both.');
      return (await io.readStdin()).replace(/\r?\n$/, '');
    }
    return options.password ?? io.env['FERRY_PASSWORD'];
  };

  interface TlsOptions {
    tlsMode?: string;
    caCertificate?: string;
    clientCertificate?: string;
    clientKey?: string;
  }
  const readPem = async (file: string, what: string): Promise<string> => {
    try {
      return await readFile(file, 'utf8');
    } catch (error) {
      throw new UsageError(`cannot read the ${what} file ${file}: ${(error as Error).message}`);
    }
  };
  const tlsOf = async (options: TlsOptions, update: boolean): Promise<CreateProfileInput['tls']> => {
    const files = options.caCertificate ?? options.clientCertificate ?? options.clientKey;
    if (options.tlsMode === undefined && files === undefined) return undefined;
    if (options.tlsMode === undefined && update) {
      throw new UsageError('--tls-mode is required with a certificate option: the TLS settings are replaced as a whole.');
    }
    return {
      ...(options.tlsMode !== undefined ? { mode: options.tlsMode as NonNullable<CreateProfileInput['tls']>['mode'] } : {}),
      ...(options.caCertificate ? { caCertificate: await readPem(options.caCertificate, 'CA certificate') } : {}),
      ...(options.clientCertificate ? { clientCertificate: await readPem(options.clientCertificate, 'client certificate') } : {}),
      ...(options.clientKey ? { clientKey: await readPem(options.clientKey, 'client key') } : {}),
    };
  };

  interface SshOptions {
    sshHost?: string;
    sshPort?: number;
    sshUser?: string;
    sshPrivateKeyFile?: string;
    sshHostKeyFingerprint?: string;
  }
  /** --ssh-* options as the profile's sshTunnel (connectivityMethod ssh-tunnel), or undefined when none is given. */
  const sshOf = async (options: SshOptions): Promise<NonNullable<UpdateProfileInput['sshTunnel']> | undefined> => {
    if ([options.sshHost, options.sshPort, options.sshUser, options.sshPrivateKeyFile, options.sshHostKeyFingerprint].every((v) => v === undefined)) return undefined;
    return {
      ...(options.sshHost !== undefined ? { host: options.sshHost } : {}),
      ...(options.sshPort !== undefined ? { port: options.sshPort } : {}),
      ...(options.sshUser !== undefined ? { username: options.sshUser } : {}),
      ...(options.sshPrivateKeyFile !== undefined ? { privateKey: await readPem(options.sshPrivateKeyFile, 'SSH private key') } : {}),
      ...(options.sshHostKeyFingerprint !== undefined ? { hostKeyFingerprint: options.sshHostKeyFingerprint } : {}),
    };
  };

  const addConnectionOptions = (command: Command, required: boolean): Command => {
    const option = (flags: string, description: string) => (required ? command.requiredOption(flags, description) : command.option(flags, description));
    command.addOption(
      new Option('--engine <engine>', 'postgresql or mysql (MariaDB is mysql)').argParser(parseEngine).makeOptionMandatory(required),
    );
    option('--host <host>', 'database server host name or address');
    command
      .option('--port <port>', 'database server port (default: 5432 for PostgreSQL, 3306 for MySQL)', parseInteger(1, 65535))
      .option('--database <name>', 'database to connect to (PostgreSQL)');
    option('--username <name>', 'user to connect as');
    return command
      .option('--password <password>', 'password (visible to other users of this machine: prefer --password-stdin or FERRY_PASSWORD)')
      .option('--password-stdin', 'read the password from standard input')
      .addOption(new Option('--tls-mode <mode>', 'TLS to the database').choices(['none', 'required', 'server-only', 'server-client']))
      .option('--ca-certificate <file>', "PEM file of the CA that signed the server's certificate (server-only, server-client)")
      .option('--client-certificate <file>', 'PEM file of the client certificate (server-client)')
      .option('--client-key <file>', 'PEM file of the client key (server-client)')
      .option('--ssh-host <host>', 'connect through an SSH tunnel via this SSH server (connectivity method ssh-tunnel)')
      .option('--ssh-port <port>', 'SSH server port (default: 22)', parseInteger(1, 65535))
      .option('--ssh-user <name>', 'user to log in to the SSH server as')
      .option('--ssh-private-key-file <file>', 'unencrypted private key file to log in with (stored encrypted, never shown)')
      .option('--ssh-host-key-fingerprint <SHA256:...>', "the SSH server's host key (ssh-keygen -lf); when absent, the first key seen is recorded");
  };

  interface ConnectionOptions extends TlsOptions, SshOptions, ClientOptions {
    engine?: string;
    host?: string;
    port?: number;
    database?: string;
    username?: string;
    password?: string;
    passwordStdin?: boolean;
  }
  const connectionInput = async (options: ConnectionOptions & { id?: string; displayName?: string; label?: Record<string, string> }): Promise<CreateProfileInput> => {
    for (const [value, flag] of [
      [options.engine, '--engine'],
      [options.host, '--host'],
      [options.username, '--username'],
    ] as const) {
      if (value === undefined) throw new UsageError(`${flag} is required.`);
    }
    const password = await passwordOf(options);
    const tls = await tlsOf(options, false);
    const ssh = await sshOf(options);
    if (ssh !== undefined && (ssh.host === undefined || ssh.username === undefined || ssh.privateKey === undefined)) {
      throw new UsageError('an SSH tunnel needs --ssh-host, --ssh-user and --ssh-private-key-file.');
    }
    return {
      ...(options.id !== undefined ? { id: options.id } : {}),
      displayName: options.displayName ?? options.id ?? `${options.engine} ${options.host}`,
      engine: options.engine as CreateProfileInput['engine'],
      host: options.host!,
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...(options.database !== undefined ? { database: options.database } : {}),
      username: options.username!,
      ...(password !== undefined ? { password } : {}),
      ...(tls !== undefined ? { tls } : {}),
      ...(ssh !== undefined ? { connectivityMethod: 'ssh-tunnel' as const, sshTunnel: { ...ssh, host: ssh.host!, username: ssh.username! } } : {}),
      ...(options.label !== undefined ? { labels: options.label } : {}),
    };
  };

  addConnectionOptions(
    clientCommand(profiles, 'create', 'Create a connection profile.')
      .option('--id <id>', 'profile id: lowercase letters, digits and -, starting with a letter (generated when absent)')
      .option('--display-name <name>', 'name shown in lists (default: the id)'),
    true,
  )
    .option('--label <key=value>', 'label (repeatable)', collectLabel)
    .action(
      run(async (options: ConnectionOptions & { id?: string; displayName?: string; label?: Record<string, string> }) => {
        const profile = await clientOf(options).createProfile(await connectionInput(options));
        if (options.output === 'json') return printJson(profile);
        print(`Created connection profile ${profile.id}.\n\n${renderProfileDetails(profile)}\n\nTest it with: ferry profiles test ${profile.id}`);
      }),
    );

  clientCommand(profiles, 'list', 'List connection profiles.')
    .option('--page-size <n>', 'one page of this many profiles (default: every profile)', parseInteger(1, 1000))
    .option('--page-token <token>', 'the page to show (from the previous page)')
    .action(
      run(async (options: ClientOptions & { pageSize?: number; pageToken?: string }) => {
        const client = clientOf(options);
        const paged = options.pageSize !== undefined || options.pageToken !== undefined;
        let page = await client.listProfiles({ pageSize: options.pageSize, pageToken: options.pageToken });
        const all = [...page.connectionProfiles];
        while (!paged && page.nextPageToken) {
          page = await client.listProfiles({ pageToken: page.nextPageToken });
          all.push(...page.connectionProfiles);
        }
        const nextPageToken = paged ? page.nextPageToken : null;
        if (options.output === 'json') return printJson({ connectionProfiles: all, nextPageToken });
        print(renderProfilesTable(all));
        if (nextPageToken) print(`\nMore: --page-token ${nextPageToken}`);
      }),
    );

  clientCommand(profiles, 'describe', 'Show a connection profile.')
    .argument('<id>', 'profile id')
    .action(
      run(async (id: string, options: ClientOptions) => {
        const profile = await clientOf(options).getProfile(id);
        if (options.output === 'json') return printJson(profile);
        print(renderProfileDetails(profile));
      }),
    );

  addConnectionOptions(
    clientCommand(profiles, 'update', 'Change a connection profile: only the options given change.')
      .argument('<id>', 'profile id')
      .option('--display-name <name>', 'name shown in lists'),
    false,
  )
    .option('--clear-password', 'remove the stored password')
    .option('--label <key=value>', 'label (repeatable; replaces all labels)', collectLabel)
    .action(
      run(async (id: string, options: ConnectionOptions & { displayName?: string; clearPassword?: boolean; label?: Record<string, string> }) => {
        if (options.engine !== undefined) throw new UsageError('the engine of a profile cannot change; create a new profile instead.');
        const password = options.clearPassword ? null : options.passwordStdin || options.password !== undefined ? await passwordOf(options) : undefined;
        if (options.clearPassword && (options.password !== undefined || options.passwordStdin)) {
          throw new UsageError('use either --clear-password or a new password, not both.');
        }
        const tls = await tlsOf(options, true);
        const ssh = await sshOf(options);
        const input: UpdateProfileInput = {
          ...(options.displayName !== undefined ? { displayName: options.displayName } : {}),
          ...(options.host !== undefined ? { host: options.host } : {}),
          ...(options.port !== undefined ? { port: options.port } : {}),
          ...(options.database !== undefined ? { database: options.database } : {}),
          ...(options.username !== undefined ? { username: options.username } : {}),
          ...(password !== undefined ? { password } : {}),
          ...(tls !== undefined ? { tls } : {}),
          ...(ssh !== undefined ? { connectivityMethod: 'ssh-tunnel' as const, sshTunnel: ssh } : {}),
          ...(options.label !== undefined ? { labels: options.label } : {}),
        };
        if (Object.keys(input).length === 0) throw new UsageError('nothing to update: give at least one option, e.g. --host or --password-stdin.');
        const profile = await clientOf(options).updateProfile(id, input);
        if (options.output === 'json') return printJson(profile);
        print(`Updated connection profile ${profile.id}.\n\n${renderProfileDetails(profile)}`);
      }),
    );

  clientCommand(profiles, 'set-password', 'Set the password of a connection profile: through the server, or with --data-dir on the data directory itself when the server cannot start (its secret key is lost or damaged).')
    .argument('<id>', 'profile id')
    .option('--password <password>', 'password (visible to other users of this machine: prefer --password-stdin or FERRY_PASSWORD)')
    .option('--password-stdin', 'read the password from standard input')
    .option('--data-dir <dir>', 'work on this data directory instead of calling the server (only while no server runs on it)')
    .addOption(storeOption())
    .action(
      run(async (id: string, options: ClientOptions & { password?: string; passwordStdin?: boolean; dataDir?: string; store?: string }) => {
        const password = await passwordOf(options);
        if (password === undefined) throw new UsageError('give the password with --password-stdin, --password or FERRY_PASSWORD.');
        if (options.dataDir === undefined) {
          const profile = await clientOf(options).updateProfile(id, { password });
          if (options.output === 'json') return printJson(profile);
          return print(`Set the password of connection profile ${profile.id}. Jobs that failed because its password could not be read resume by themselves.`);
        }
        if (options.server !== undefined) throw new UsageError('use either --server or --data-dir, not both.');
        const { openSecretKeyService } = await import('../main.js');
        const opened = await openSecretKeyService(options.dataDir, storeUrlOf(options));
        let result;
        try {
          result = await opened.keys.setPassword(id, password);
        } finally {
          await opened.close();
        }
        if (options.output === 'json') return printJson(result);
        const lines = [`Set the password of connection profile ${id} in ${path.resolve(options.dataDir)} (key id ${result.keyId}).`];
        if (result.damagedKeyMovedTo !== null) lines.push(`The damaged key file was moved to ${result.damagedKeyMovedTo}.`);
        if (result.createdKey) lines.push(`No usable secret key existed: a new one was made (${path.join(path.resolve(options.dataDir), 'secret.key')}). Back it up.`);
        if (result.stillUnreadable.length > 0) {
          lines.push('', 'These secrets were encrypted with another key and stay unreadable until they are re-entered (their jobs fail until then):');
          for (const s of result.stillUnreadable) lines.push(`  ${s.description}: ${s.command}`);
        }
        print(lines.join('\n'));
      }),
    );

  clientCommand(profiles, 'delete', 'Delete a connection profile (refused while a job that is not Completed uses it).')
    .argument('<id>', 'profile id')
    .action(
      run(async (id: string, options: ClientOptions) => {
        await clientOf(options).deleteProfile(id);
        if (options.output === 'json') return printJson({});
        print(`Deleted connection profile ${id}.`);
      }),
    );

  addConnectionOptions(
    clientCommand(profiles, 'test', 'Connect to a database and report its version, settings, privileges and problems: a saved profile by id, or unsaved settings given as options.').argument(
      '[id]',
      'profile id (omit it to test the connection options instead)',
    ),
    false,
  ).action(
    run(async (id: string | undefined, options: ConnectionOptions) => {
      const client = clientOf(options);
      let result;
      if (id !== undefined) {
        if (options.engine ?? options.host ?? options.username) throw new UsageError('give either a profile id or connection options, not both.');
        result = await client.testProfile(id);
      } else {
        result = await client.testProfileInput(await connectionInput(options));
      }
      if (options.output === 'json') printJson(result);
      else print(renderConnectionTest(result));
      if (!result.ok) {
        // Said once, on stderr (the report above has the settings, privileges and checks).
        io.stderr(`error: ${result.error?.code ?? 'CONNECTION_TEST_FAILED'}: ${result.error?.message ?? 'the connection test found problems (see the checks above).'}\n`);
        return 1;
      }
    }),
  );

  // ---------------------------------------------------------------------------------
  // jobs

  const jobs = program.command('jobs').description('Manage migration jobs.');

  clientCommand(jobs, 'create', 'Create a migration job (Not started). Verify it with `ferry jobs verify`, then start it.')
    .option('--id <id>', 'job id: lowercase letters, digits and -, starting with a letter (generated when absent)')
    .option('--display-name <name>', 'name shown in lists (default: the id)')
    .addOption(new Option('--type <type>', 'one-time: full dump only; continuous: full dump then change data capture until promote').choices(['one-time', 'continuous']).makeOptionMandatory())
    .requiredOption('--source <profile>', 'source connection profile id')
    .requiredOption('--destination <profile>', 'destination connection profile id')
    .option('--include <pattern>', 'schema or schema.table to migrate (repeatable; default: everything)', collect)
    .option('--exclude <pattern>', 'schema or schema.table to leave out (repeatable)', collect)
    .option('--dump-parallelism <n>', 'tables copied at the same time during the full dump (default 4)', parseInteger(1, 64))
    .option('--map-schema <src=dst>', 'put the source schema (PostgreSQL) or database (MySQL) SRC under the name DST on the destination (repeatable)', collectSchemaPair)
    .addOption(new Option('--zero-date-policy <policy>', 'MySQL zero dates bound for PostgreSQL: null writes NULL and warns (default); refuse fails the job').choices(['null', 'refuse']))
    .addOption(new Option('--enum-error-value-policy <policy>', "MySQL ENUM error values ('') bound for PostgreSQL: label keeps them as a label of the enum type (default); null writes NULL and warns").choices(['label', 'null']))
    .addOption(new Option('--nul-character-policy <policy>', 'NUL characters in MySQL text bound for PostgreSQL: refuse fails the job naming table, column and key (default); strip removes them and warns').choices(['refuse', 'strip']))
    .option('--definer-policy <policy>', 'MySQL to MySQL: who views, routines, triggers and events run as on the destination: keep (default: the source DEFINER), invoker (SQL SECURITY INVOKER, the destination user as definer) or user@host')
    .option('--max-parked-changes <n>', `continuous jobs: changes that may wait for tables the destination refuses before the job is Failed (default ${DEFAULT_MAX_PARKED_CHANGES}; a warning at 80 %)`, parseInteger(1, 1_000_000_000))
    .option('--require-validation', "promote only after a clean data validation (ferry jobs validate): promote is refused otherwise")
    .option('--label <key=value>', 'label (repeatable)', collectLabel)
    .action(
      run(
        async (
          options: ClientOptions & {
            id?: string;
            displayName?: string;
            type: 'one-time' | 'continuous';
            source: string;
            destination: string;
            include?: string[];
            exclude?: string[];
            dumpParallelism?: number;
            zeroDatePolicy?: 'null' | 'refuse';
            enumErrorValuePolicy?: 'label' | 'null';
            nulCharacterPolicy?: 'refuse' | 'strip';
            mapSchema?: Record<string, string>;
            definerPolicy?: string;
            maxParkedChanges?: number;
            requireValidation?: boolean;
            label?: Record<string, string>;
          },
        ) => {
          const input: CreateJobInput = {
            ...(options.maxParkedChanges !== undefined ? { maxParkedChanges: options.maxParkedChanges } : {}),
            ...(options.mapSchema !== undefined ? { schemaMapping: options.mapSchema } : {}),
            ...(options.zeroDatePolicy !== undefined ? { zeroDatePolicy: options.zeroDatePolicy } : {}),
            ...(options.enumErrorValuePolicy !== undefined ? { enumErrorValuePolicy: options.enumErrorValuePolicy } : {}),
            ...(options.nulCharacterPolicy !== undefined ? { nulCharacterPolicy: options.nulCharacterPolicy } : {}),
            ...(options.definerPolicy !== undefined ? { definerPolicy: options.definerPolicy } : {}),
            ...(options.requireValidation === true ? { requireValidation: true } : {}),
            ...(options.id !== undefined ? { id: options.id } : {}),
            displayName: options.displayName ?? options.id ?? `${options.source} to ${options.destination}`,
            type: options.type,
            sourceProfileId: options.source,
            destinationProfileId: options.destination,
            ...(options.include || options.exclude ? { selection: { include: options.include ?? [], exclude: options.exclude ?? [] } } : {}),
            ...(options.dumpParallelism !== undefined ? { dumpParallelism: options.dumpParallelism } : {}),
            ...(options.label !== undefined ? { labels: options.label } : {}),
          };
          const job = await clientOf(options).createJob(input);
          if (options.output === 'json') return printJson(job);
          print(`Created migration job ${job.id} (${job.statusLabel}).\n\nNext: ferry jobs verify ${job.id}   then: ferry jobs start ${job.id}`);
        },
      ),
    );

  clientCommand(jobs, 'update', 'Change a migration job: only the options given change.')
    .argument('<id>', 'job id')
    .option('--display-name <name>', 'name shown in lists')
    .option('--max-parked-changes <n>', 'changes that may wait for tables the destination refuses before the job is Failed (takes effect when the incremental load next starts)', parseInteger(1, 1_000_000_000))
    .action(
      run(async (id: string, options: ClientOptions & { displayName?: string; maxParkedChanges?: number }) => {
        const job = await clientOf(options).updateJob(id, {
          ...(options.displayName !== undefined ? { displayName: options.displayName } : {}),
          ...(options.maxParkedChanges !== undefined ? { maxParkedChanges: options.maxParkedChanges } : {}),
        });
        if (options.output === 'json') return printJson(job);
        print(`Updated migration job ${job.id} (${job.statusLabel}).`);
      }),
    );

  clientCommand(jobs, 'list', 'List migration jobs.')
    .option('--status <statuses>', 'only these statuses, comma-separated (e.g. RUNNING,FAILED)', parseStatuses)
    .option('--page-size <n>', 'one page of this many jobs (default: every job)', parseInteger(1, 1000))
    .option('--page-token <token>', 'the page to show (from the previous page)')
    .option('--search <text>', 'only jobs whose id or name contains this text')
    .option('--order-by <order>', 'createTime, updateTime or displayName, with " desc" to reverse (default: createTime)')
    .action(
      run(async (options: ClientOptions & { status?: string[]; pageSize?: number; pageToken?: string; search?: string; orderBy?: string }) => {
        const client = clientOf(options);
        const paged = options.pageSize !== undefined || options.pageToken !== undefined;
        const filters = { status: options.status, search: options.search, orderBy: options.orderBy };
        let page = await client.listJobs({ ...filters, pageSize: options.pageSize, pageToken: options.pageToken });
        const all = [...page.migrationJobs];
        while (!paged && page.nextPageToken) {
          page = await client.listJobs({ ...filters, pageToken: page.nextPageToken });
          all.push(...page.migrationJobs);
        }
        const nextPageToken = paged ? page.nextPageToken : null;
        if (options.output === 'json') return printJson({ migrationJobs: all, nextPageToken });
        print(renderJobsTable(all));
        if (nextPageToken) print(`\nMore: --page-token ${nextPageToken}`);
      }),
    );

  clientCommand(jobs, 'describe', 'Show every field of a migration job, its error, progress, tables and recent events.')
    .argument('<id>', 'job id')
    .option('--objects', "show the job's object report instead: the source's views, routines, triggers, events and other objects beyond tables, and what the job does with each (--output json adds their definitions)")
    .option('--definitions-file <file>', 'with --objects: write the definitions of the objects the job leaves out to FILE, as one SQL file to adapt')
    .action(
      run(async (id: string, options: ClientOptions & { objects?: boolean; definitionsFile?: string }) => {
        const client = clientOf(options);
        if (options.definitionsFile !== undefined && options.objects !== true) {
          throw new UsageError('--definitions-file goes with --objects: ferry jobs describe ID --objects --definitions-file FILE');
        }
        if (options.objects === true) {
          const report = await client.listJobSchemaObjects(id);
          if (options.definitionsFile !== undefined) {
            await writeFile(options.definitionsFile, leftOutDefinitionsSql(report.objects, `Ferry job ${id}: schema objects left out, from the source's definitions`));
          }
          if (options.output === 'json') return printJson(report);
          print(renderSchemaObjects(report.objects));
          const leftOut = report.objects.filter((o) => o.disposition === 'left-out').length;
          if (options.definitionsFile !== undefined) print(`\nWrote the definitions of ${leftOut} object(s) left out to ${options.definitionsFile}.`);
          else if (leftOut > 0) print(`\n${leftOut} object(s) left out: --definitions-file FILE writes their definitions to adapt.`);
          return;
        }
        const job = await client.getJob(id);
        const [{ objects }, { events }] = await Promise.all([client.listJobObjects(id), client.listJobEvents(id)]);
        if (options.output === 'json') return printJson({ ...job, objects });
        print(renderJobDetails(job, { objects, events: events.slice(-10), ascii: !io.isTTY }));
      }),
    );

  const ACTION_HELP: { [A in Exclude<JobAction, 'delete'>]: string } = {
    start: 'Start a job that is Not started.',
    stop: 'Stop a running job; it saves its checkpoint.',
    resume: 'Resume a job stopped in Incremental load, from its checkpoint.',
    restart: 'Wipe what the job wrote on the destination and start over with a full dump.',
    promote: 'Cut over: wait for lag 0, sync sequences, remove replication objects on the source; ends Completed.',
  };
  /**
   * Promote, restart and delete say what they will do and ask first, on a terminal; --yes (or
   * a script's standard input) goes ahead. Resolves false when the user said no.
   */
  const confirmed = async (options: { yes?: boolean }, what: string): Promise<boolean> => {
    if (options.yes === true) return true;
    const answer = await io.confirm(`${what}\nContinue?`);
    if (answer === false) {
      io.stderr('Nothing was changed.\n');
      return false;
    }
    return true;
  };
  const yesOption = (command: Command) => command.option('-y, --yes', 'do not ask for confirmation (scripts)');
  const printAccepted = (job: JobView, action: string, options: ClientOptions) => {
    if (options.output === 'json') return printJson(job);
    print(`Migration job ${job.id}: ${action} accepted. Status: ${statusText(job)}.\nFollow it with: ferry jobs watch ${job.id}`);
  };
  for (const action of ['start', 'stop', 'resume', 'promote'] as const) {
    const command = clientCommand(jobs, action, ACTION_HELP[action]).argument('<id>', 'job id');
    if (action === 'promote') {
      yesOption(command)
        .option('--force', 'promote even while tables are parked (the destination refuses their changes): the other tables are promoted, the parked ones are reported as not migrated')
        .option('--require-validation', "refuse unless the job's latest validation (ferry jobs validate) is clean");
    }
    command.action(
      run(async (id: string, options: ClientOptions & { force?: boolean; requireValidation?: boolean; yes?: boolean }) => {
        if (action === 'promote') {
          const job = await clientOf(options).getJob(id);
          const from = job.status === 'STOPPED'
            ? `Migration job ${id} is Stopped: promote resumes it, applies every change the source wrote since, then cuts over.`
            : `Promote migration job ${id}: Ferry applies every remaining change, then cuts over.`;
          const what = `${from} Sequences are set from the source and the replication slot or binlog reading on the source ends; the destination then stands alone and the job ends Completed.${options.force === true ? ' With --force, tables whose changes are parked are left not migrated.' : ''}`;
          if (!(await confirmed(options, what))) return 1;
        }
        const body = { ...(options.force === true ? { force: true } : {}), ...(options.requireValidation === true ? { requireValidation: true } : {}) };
        const job = await clientOf(options).applyJobAction(id, action, Object.keys(body).length > 0 ? body : undefined);
        printAccepted(job, options.force === true ? `${action} with force` : action, options);
      }),
    );
  }
  yesOption(clientCommand(jobs, 'restart', `${ACTION_HELP.restart} With --objects, restart only those tables (while the job is in Full dump): they are emptied and copied again, the tables already copied are kept.`))
    .argument('<id>', 'job id')
    .option('--objects <tables>', 'only these tables, as schema.table (comma-separated or repeatable; see ferry jobs describe ID)', collectList)
    .action(
      run(async (id: string, options: ClientOptions & { objects?: string[]; yes?: boolean }) => {
        const what = options.objects === undefined
          ? `Restart migration job ${id}: everything it wrote on the destination is removed (tables it created are dropped, tables it found are emptied), its replication objects on the source are dropped, and it starts over with a full dump.`
          : `Restart tables ${options.objects.join(', ')} of migration job ${id}: they are emptied on the destination and copied again; the other tables are kept.`;
        if (!(await confirmed(options, what))) return 1;
        const job = await clientOf(options).restartJob(id, options.objects === undefined ? {} : { objects: options.objects });
        printAccepted(job, options.objects === undefined ? 'restart' : `restart of ${options.objects.join(', ')}`, options);
      }),
    );

  yesOption(clientCommand(jobs, 'delete', 'Delete a migration job: stops it, removes replication objects on the source, keeps the data on the destination.'))
    .argument('<id>', 'job id')
    .action(
      run(async (id: string, options: ClientOptions & { yes?: boolean }) => {
        const what = `Delete migration job ${id}: it stops, its replication objects on the source are dropped and its history is removed. The data on the destination is kept.`;
        if (!(await confirmed(options, what))) return 1;
        await clientOf(options).deleteJob(id);
        if (options.output === 'json') return printJson({});
        print(`Deleted migration job ${id}. The data on the destination is kept.`);
      }),
    );

  clientCommand(jobs, 'verify', 'Run every check that would make the job fail, without changing anything. Exits 1 when a check fails.')
    .argument('<id>', 'job id')
    .action(
      run(async (id: string, options: ClientOptions) => {
        const report = await clientOf(options).verifyJob(id);
        if (options.output === 'json') printJson(report);
        else print(renderVerifyReport(report));
        return report.ok ? 0 : 1;
      }),
    );

  clientCommand(jobs, 'validate', 'Compare source and destination table by table (row counts, checksums, differing rows) and wait for the result. Exits 0 when clean, 1 otherwise.')
    .argument('<id>', 'job id')
    .option('--no-wait', 'start the validation and print its id without waiting')
    .option('--timeout <seconds>', 'give up waiting after this many seconds (the validation goes on)', parseSeconds, 3600)
    .action(
      run(async (id: string, options: ClientOptions & { wait: boolean; timeout: number }) => {
        const client = clientOf(options);
        let validation = await client.validateJob(id);
        if (options.wait) {
          const deadline = Date.now() + options.timeout * 1000;
          let lastProgress = '';
          while (validation.status === 'RUNNING') {
            if (Date.now() > deadline) {
              io.stderr(`error: validation ${validation.id} is still running after ${options.timeout} s; follow it with: ferry jobs validations ${id} ${validation.id}\n`);
              return 1;
            }
            await sleep(1000);
            validation = await client.getJobValidation(id, validation.id);
            const s = validation.summary;
            const progress = `validating: ${s.tablesEqual + s.tablesDifferent + s.tablesFailed} of ${s.tables} tables done, ${s.rowsCompared} rows read`;
            if (io.isTTY && progress !== lastProgress) io.stderr(`${progress}\n`);
            lastProgress = progress;
          }
        }
        if (options.output === 'json') printJson(validation);
        else print(options.wait ? renderValidation(validation) : `Validation ${validation.id} started. Follow it with: ferry jobs validations ${id} ${validation.id}`);
        return !options.wait || validation.clean === true ? 0 : 1;
      }),
    );

  clientCommand(jobs, 'validations', "List a job's validations, newest first, or show one with its per-table results.")
    .argument('<id>', 'job id')
    .argument('[validationId]', 'the validation to show')
    .action(
      run(async (id: string, validationId: string | undefined, options: ClientOptions) => {
        const client = clientOf(options);
        if (validationId !== undefined) {
          const validation = await client.getJobValidation(id, validationId);
          if (options.output === 'json') return printJson(validation);
          return print(renderValidation(validation));
        }
        const { validations } = await client.listJobValidations(id);
        if (options.output === 'json') return printJson({ validations });
        print(renderValidationList(validations));
      }),
    );

  clientCommand(jobs, 'watch', 'Follow a job live: status and per-table progress. Ends when the job is Completed (exit 0), Failed (exit 1), Stopped (exit 0) or deleted (exit 1).')
    .argument('<id>', 'job id')
    .option('--interval <seconds>', 'seconds between refreshes', parseSeconds, 1)
    .action(
      run(async (id: string, options: ClientOptions & { interval: number }) => {
        const client = clientOf(options);
        let previous: { time: number; rows: number; bytes: number } | null = null;
        let lastPrinted = '';
        let seen = false;
        for (;;) {
          let job: JobView;
          let objects;
          try {
            job = await client.getJob(id);
            ({ objects } = await client.listJobObjects(id));
          } catch (error) {
            if (seen && error instanceof ApiClientError && error.code === 'NOT_FOUND') {
              io.stderr(`error: NOT_FOUND: migration job ${id} was deleted while being watched.\n`);
              return 1;
            }
            if (seen && error instanceof ApiClientError && (error.code === 'UNAVAILABLE' || error.code === 'TIMEOUT')) {
              // The server restarting does not end the watch: jobs resume from their checkpoint.
              io.stderr(`warning: ${error.message} Retrying...\n`);
              await sleep(options.interval * 1000);
              continue;
            }
            throw error;
          }
          seen = true;
          const now = Date.now();
          let rates: { bytesPerSecond: number | null; rowsPerSecond: number | null } = { bytesPerSecond: null, rowsPerSecond: null };
          if (previous && now > previous.time) {
            const seconds = (now - previous.time) / 1000;
            rates = {
              bytesPerSecond: Math.max(0, (job.progress.bytesCopied - previous.bytes) / seconds),
              rowsPerSecond: Math.max(0, (job.progress.rowsCopied - previous.rows) / seconds),
            };
          }
          previous = { time: now, rows: job.progress.rowsCopied, bytes: job.progress.bytesCopied };

          if (options.output === 'json') {
            const line = JSON.stringify({ ...job, objects });
            if (line !== lastPrinted) io.stdout(`${line}\n`);
            lastPrinted = line;
          } else if (io.isTTY) {
            io.stdout(`\x1b[H\x1b[2J${renderWatchFrame(job, { objects, ...rates, now: new Date(now) })}\n`);
          } else {
            // Not a terminal (a log, a pipe): print the view again only when it changes.
            const unchanged = renderWatchFrame(job, { objects, ascii: true });
            if (unchanged !== lastPrinted) io.stdout(`${new Date(now).toISOString()}\n${renderWatchFrame(job, { objects, ...rates, ascii: true })}\n\n`);
            lastPrinted = unchanged;
          }

          if (job.status === 'COMPLETED') {
            if (options.output !== 'json') io.stderr(`Migration job ${id} completed.\n`);
            return 0;
          }
          if (job.status === 'STOPPED') {
            if (options.output !== 'json') io.stderr(`Migration job ${id} is ${statusText(job)}; actions now: ${job.availableActions.join(', ')}.\n`);
            return 0;
          }
          if (job.status === 'FAILED' && !(job.error?.recoverable ?? false)) {
            io.stderr(
              `error: ${job.error?.code ?? 'FAILED'}: ${job.error?.message ?? `migration job ${id} failed.`}${Array.isArray(job.error?.details['restartObjects']) ? '' : ' (restart the job once the cause is fixed)'}\n`,
            );
            return 1;
          }
          await sleep(options.interval * 1000);
        }
      }),
    );

  // ---------------------------------------------------------------------------------
  // tokens: on the data directory's store itself, so that the first token can be made
  // before anyone can call the API.

  const tokens = program
    .command('tokens')
    .description('Manage API tokens (required when `ferry serve` listens beyond loopback). Works on the data directory directly, with or without a running server.');
  const tokenCommand = (name: string, description: string): Command =>
    tokens
      .command(name)
      .description(description)
      .addOption(new Option('--data-dir <dir>', 'the data directory of the server').env('FERRY_DATA_DIR').default('./.ferry'))
      .addOption(storeOption())
      .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'));
  const withTokens = async <T>(options: TokenOptions, work: (service: TokenService) => Promise<T>): Promise<T> => {
    // Loaded on demand so that API client commands do not load SQLite.
    const { openTokenService } = await import('../main.js');
    const opened = await openTokenService(options.dataDir, storeUrlOf(options));
    try {
      return await work(opened.tokens);
    } finally {
      await opened.close();
    }
  };
  interface TokenOptions {
    dataDir: string;
    store?: string;
    output: OutputFormat;
  }

  tokenCommand('create', 'Create an API token. Its secret is printed once: Ferry keeps only a hash of it.')
    .requiredOption('--name <name>', 'what the token is for, e.g. ci or "alice laptop"')
    .action(
      run(async (options: TokenOptions & { name: string }) => {
        const created = await withTokens(options, (service) => service.create(options.name));
        if (options.output === 'json') return printJson(created);
        print(
          `Created API token ${created.token.id} (${created.token.name}) for the server whose data directory is ${path.resolve(options.dataDir)}.\n` +
            `Its secret, shown only now:\n\n  ${created.secret}\n\n` +
            'Send it as "Authorization: Bearer <secret>": the CLI reads FERRY_TOKEN, the console asks for it.\n' +
            `Revoke it with: ferry tokens revoke ${created.token.id}`,
        );
      }),
    );

  tokenCommand('list', 'List API tokens (never their secrets).').action(
    run(async (options: TokenOptions) => {
      const list = await withTokens(options, (service) => service.list());
      if (options.output === 'json') return printJson({ apiTokens: list });
      if (list.length === 0) return print('No API tokens. Create one with `ferry tokens create --name NAME`.');
      print(
        renderTable(
          ['id', 'name', 'state', 'created', 'last used', 'revoked'],
          list.map((t) => [t.id, t.name, t.state, formatTime(t.createTime), formatTime(t.lastUsedTime), formatTime(t.revokeTime)]),
        ),
      );
    }),
  );

  tokenCommand('revoke', 'Revoke an API token: requests that send it are refused from now on.')
    .argument('<id>', 'token id (from `ferry tokens list`)')
    .action(
      run(async (id: string, options: TokenOptions) => {
        const token = await withTokens(options, (service) => service.revoke(id));
        if (options.output === 'json') return printJson(token);
        print(`Revoked API token ${token.id} (${token.name}) at ${formatTime(token.revokeTime)}.`);
      }),
    );

  // ---------------------------------------------------------------------------------
  // keys: the key that encrypts secrets at rest, on the data directory while no server runs.

  const keys = program.command('keys').description('Manage the secret key that encrypts stored passwords and client keys.');
  keys
    .command('rotate')
    .description('Re-encrypt every stored secret with a new key, atomically, and replace the key file (with FERRY_SECRET_KEY: print the new key instead). Stop the server first.')
    .addOption(new Option('--data-dir <dir>', 'the data directory of the server').env('FERRY_DATA_DIR').default('./.ferry'))
    .addOption(storeOption())
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(
      run(async (options: { dataDir: string; store?: string; output: OutputFormat }) => {
        const { openSecretKeyService } = await import('../main.js');
        const opened = await openSecretKeyService(options.dataDir, storeUrlOf(options));
        let newKey: string | null = null;
        let result;
        try {
          result = await opened.keys.rotate((encoded) => {
            newKey = encoded;
            // Printed before the store changes, so that a crash cannot lose the only copy.
            if (options.output !== 'json') io.stderr(`New secret key (set FERRY_SECRET_KEY to it once this command reports success):\n\n  ${encoded}\n\n`);
          });
        } finally {
          await opened.close();
        }
        if (options.output === 'json') return printJson({ ...result, ...(newKey === null ? {} : { newKey }) });
        print(
          result.keyFile === null
            ? `Rotated: ${plural(result.secretsReencrypted, 'secret')} re-encrypted with the new key (key id ${result.newKeyId}; the old key ${result.oldKeyId} no longer decrypts them). Set FERRY_SECRET_KEY to the new key printed above before starting Ferry, and replace your backup of the key.`
            : `Rotated: ${plural(result.secretsReencrypted, 'secret')} re-encrypted with a new key (key id ${result.newKeyId}), now in ${result.keyFile}; the old key (${result.oldKeyId}) no longer decrypts them. Replace your backup of the key file.`,
        );
      }),
    );

  // ---------------------------------------------------------------------------------
  // nodes: the servers of the metadata store.

  const nodes = program.command('nodes').description('The servers (nodes) that work on the metadata store.');
  clientCommand(
    nodes,
    'list',
    'List the nodes of the metadata store: id, state (UP; LOST: no heartbeat for three heartbeats; STOPPED; DRAINING, DRAINED), the jobs each runs, address, last heartbeat.',
  ).action(
    run(async (options: ClientOptions) => {
      const list = await clientOf(options).listNodes();
      if (options.output === 'json') return printJson(list);
      if (list.nodes.length === 0) return print('No nodes.');
      print(
        renderTable(
          ['id', 'state', 'jobs', 'address', 'version', 'started', 'last heartbeat', 'stopped'],
          list.nodes.map((n) => [
            n.id, n.state, n.jobs.length === 0 ? '-' : n.jobs.join(', '), n.address, n.version, formatTime(n.startTime), formatTime(n.heartbeatTime), formatTime(n.stopTime),
          ]),
        ),
      );
    }),
  );
  for (const drain of [true, false]) {
    clientCommand(
      nodes,
      `${drain ? 'drain' : 'undrain'} <node>`,
      drain
        ? 'Drain a node: it stops taking jobs and hands the jobs it runs to other nodes at their next safe point (state DRAINING, then DRAINED: it can be stopped and upgraded). Lasts until undrain.'
        : 'Undrain a node: it takes jobs again.',
    ).action(
      run(async (nodeId: string, options: ClientOptions) => {
        const node = await clientOf(options).setNodeDrain(nodeId, drain);
        if (options.output === 'json') return printJson(node);
        print(
          drain
            ? `Node ${node.id} drains (${node.state}${node.jobs.length === 0 ? '' : `, still running ${node.jobs.join(', ')}`}): its jobs move to other nodes; \`ferry nodes list\` shows it DRAINED once it holds none.`
            : `Node ${node.id} takes jobs again (${node.state}).`,
        );
      }),
    );
  }

  // ---------------------------------------------------------------------------------
  // store: the metadata store itself.

  const storeCommand = program.command('store').description('Work on the metadata store (profiles, jobs, history, tokens).');
  storeCommand
    .command('copy')
    .description('Copy everything a SQLite store holds (profiles with their encrypted secrets, jobs, tables, history, checkpoints, tokens) into a PostgreSQL store, in one transaction. Stop the server first; then start the servers with --store on the target and the same secret key.')
    .requiredOption('--from <dir>', 'the data directory of the SQLite store (holds ferry.db)')
    .requiredOption('--to <url>', 'the PostgreSQL store: postgresql://user[:password]@host[:port]/database')
    .option('--replace', 'delete what the target store holds first (refused otherwise when it is not empty)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(
      run(async (options: { from: string; to: string; replace?: boolean; output: OutputFormat }) => {
        const { copySqliteStoreToPostgres } = await import('../store/store-copy.js');
        const result = await copySqliteStoreToPostgres({ fromDataDir: options.from, toUrl: options.to, replace: options.replace === true });
        if (options.output === 'json') return printJson(result);
        print(
          `Copied ${result.from} into ${result.to}${result.replaced ? ' (its previous content deleted)' : ''}:\n` +
            renderTable(['table', 'rows'], result.tables.map((t) => [t.table, String(t.rows)])) +
            `\nThe secrets are copied as they were: start every server on the new store with the secret key of ${path.resolve(options.from)} (its secret.key file, or FERRY_SECRET_KEY).`,
        );
      }),
    );

  return program;
}
