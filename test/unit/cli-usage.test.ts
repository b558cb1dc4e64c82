/**
 * Command-line mistakes, answered without a server: every missing required option is named in
 * one error, so the user fixes them all in one attempt.
 */
import { describe, expect, it } from 'vitest';
import { buildCli } from '../../src/cli/cli.js';

async function parse(argv: string[]): Promise<{ code: number | null; stderr: string; stdout: string }> {
  let stderr = '';
  let stdout = '';
  let code: number | null = null;
  const program = buildCli({
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
    env: {},
    exit: (exitCode) => {
      code = exitCode;
    },
  });
  await program.parseAsync(argv, { from: 'user' }).catch(() => undefined);
  return { code, stderr, stdout };
}

describe('CLI usage errors', () => {
  it('names every missing required option of jobs create at once, exit code 2', async () => {
    const result = await parse(['jobs', 'create', '--id', 'j1']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("error: required options '--type <type>', '--source <profile>' and '--destination <profile>' not specified");
    expect(result.stderr.match(/required option/g)?.length).toBe(1);
  });

  it('names the one missing option in the singular', async () => {
    const result = await parse(['jobs', 'create', '--type', 'one-time', '--source', 'a']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("error: required option '--destination <profile>' not specified");
  });
});
