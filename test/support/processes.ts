import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The repository root, so helpers work from any working directory. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The compiled CLI; `npm test` builds it before running the suite. */
export const CLI = `${ROOT}dist/cli/main.js`;
/** The tsx loader as a URL, so `--import` works from any working directory. */
export const TSX = import.meta.resolve('tsx');

/** A child process whose output is kept for later assertions (canary checks read it). */
export interface Child {
  proc: ChildProcess;
  url: string;
  stdout: string[];
  stderr: string[];
  /** Sends SIGTERM and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

function childEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  // The parent's variables stay out, except what Node needs: a stray MISTRAL_API_KEY or
  // NODE_ENV on a developer's machine must not change what a test sees.
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/**
 * Spawns a long-running process and resolves once it prints a JSON line with a `url` field
 * (the gateway's "listening" log line, or a test server's first line).
 */
export function spawnServer(
  command: string,
  args: string[],
  options: { env?: Record<string, string | undefined>; cwd?: string; timeoutMs?: number } = {},
): Promise<Child> {
  const proc = spawn(command, args, {
    cwd: options.cwd ?? ROOT,
    env: childEnv(options.env ?? {}),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const exited = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => resolve(code)),
  );
  createInterface({ input: proc.stderr! }).on('line', (line) => stderr.push(line));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not start: ${stderr.join('\n')}`));
    }, options.timeoutMs ?? 20_000);
    const onEarlyExit = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before listening: ${stderr.join('\n')}`));
    };
    proc.once('exit', onEarlyExit);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      stdout.push(line);
      let url: unknown;
      try {
        url = (JSON.parse(line) as { url?: unknown }).url;
      } catch {
        return;
      }
      if (typeof url !== 'string') return;
      clearTimeout(timer);
      // Only the early-exit listener goes: `exited` must still see the exit for stop().
      proc.off('exit', onEarlyExit);
      resolve({
        proc,
        url,
        stdout,
        stderr,
        async stop(signal = 'SIGTERM') {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
          return exited;
        },
      });
    });
  });
}

/** The result of one CLI run. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the compiled CLI once and collects its output. */
export function runCli(
  args: string[],
  options: { env?: Record<string, string | undefined>; cwd?: string; input?: string } = {},
): Promise<CliResult> {
  const proc = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? ROOT,
    env: childEnv(options.env ?? {}),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d) => {
    stdout += d;
  });
  proc.stderr.on('data', (d) => {
    stderr += d;
  });
  proc.stdin.end(options.input ?? '');
  return new Promise((resolve) => proc.once('close', (code) => resolve({ code, stdout, stderr })));
}

/** Starts `mistral-guard serve` as a real process on a free port. */
export function startGatewayProcess(options: {
  dataDir: string;
  upstreamUrl: string;
  env?: Record<string, string | undefined>;
  args?: string[];
  cwd?: string;
}): Promise<Child> {
  return spawnServer(
    process.execPath,
    [CLI, 'serve', '--port', '0', '--data-dir', options.dataDir, ...(options.args ?? [])],
    {
      cwd: options.cwd,
      env: { MISTRAL_BASE_URL: options.upstreamUrl, ...options.env },
    },
  );
}
