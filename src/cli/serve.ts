import type { Command } from 'commander';
import { startGateway } from '../gateway/start.js';
import { cliContext } from './context.js';

/** `mistral-guard serve`: runs the gateway until SIGTERM or SIGINT. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the gateway (a Mistral-compatible reverse proxy)')
    .option('--port <n>', 'port to listen on (default 8741, MISTRAL_GUARD_PORT)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1, MISTRAL_GUARD_HOST)')
    .action(async (opts: { port?: string; host?: string }, command: Command) => {
      const { config } = await cliContext(command, {
        requireUpstreamKey: true,
        flags: { port: opts.port, host: opts.host },
      });
      const running = await startGateway(config);
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        running.logger.info({ signal }, 'shutting down');
        await running.close();
        process.exitCode = 0;
      };
      process.once('SIGTERM', () => void stop('SIGTERM'));
      process.once('SIGINT', () => void stop('SIGINT'));
    });
}
