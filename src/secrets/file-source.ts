import { randomBytes } from 'node:crypto';
import { chmod, open, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Secret } from '../config/secret.js';
import { UpstreamKeyError, type UpstreamKeyErrorCode } from './errors.js';
import type { KeySource } from './source.js';
import { keyFromText } from './source.js';

/** A key file is a few dozen bytes; a large file is the wrong file. */
const MAX_FILE_BYTES = 64 * 1024;

const ERRNO_CODES: Record<string, UpstreamKeyErrorCode> = {
  ENOENT: 'source_not_found',
  ENOTDIR: 'source_not_found',
  EACCES: 'source_auth_failed',
  EPERM: 'source_auth_failed',
  EROFS: 'source_read_only',
};

function fileError(error: unknown, action: string, path: string): UpstreamKeyError {
  const errno = (error as NodeJS.ErrnoException).code ?? 'EIO';
  const code = ERRNO_CODES[errno] ?? 'source_failed';
  return new UpstreamKeyError(code, `cannot ${action} key file ${path} (${errno})`, {
    cause: error,
  });
}

/**
 * The key in a file, such as a Kubernetes or Docker secret mounted into the container. Read
 * again at every refresh, so a new value written there (by `upstream rotate`, or by the platform
 * updating the mount) reaches the running gateway without a restart.
 *
 * @example
 * const source = fileKeySource('/run/secrets/mistral-key');
 * const { key, warnings } = await source.load(); // warns when group or others may read it
 */
export function fileKeySource(path: string): KeySource {
  const location = `file ${path}`;
  return {
    kind: 'file',
    location,
    async load() {
      const text = await readKeyFile(path);
      const mode = await modeOf(path);
      const warnings: string[] = [];
      // Windows has no permission bits to check.
      if (process.platform !== 'win32' && (mode & 0o044) !== 0) {
        const octal = (mode & 0o777).toString(8).padStart(4, '0');
        warnings.push(`${location} is readable by group or others (mode ${octal}); use 0400`);
      }
      const key = new Secret(keyFromText(text, undefined, location), location);
      return { key, version: null, own: true, warnings };
    },
    async write(key) {
      await replaceFile(path, `${key.reveal()}\n`);
      return { version: null };
    },
  };
}

async function readKeyFile(path: string): Promise<string> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(path, 'r');
    const buffer = Buffer.alloc(MAX_FILE_BYTES + 1);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    if (bytesRead > MAX_FILE_BYTES) {
      throw new UpstreamKeyError('source_bad_value', `key file ${path} is too large for a key`);
    }
    return buffer.subarray(0, bytesRead).toString('utf8');
  } catch (error) {
    if (error instanceof UpstreamKeyError) throw error;
    throw fileError(error, 'read', path);
  } finally {
    await handle?.close();
  }
}

async function modeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).mode;
  } catch (error) {
    throw fileError(error, 'read', path);
  }
}

/**
 * Replaces the file in one step (a temporary file renamed over it), so a reader sees the old
 * key or the new one, never half of one. The file keeps its mode; a new one gets 0600.
 */
async function replaceFile(path: string, text: string): Promise<void> {
  let mode = 0o600;
  try {
    mode = (await stat(path)).mode & 0o777;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw fileError(error, 'write', path);
  }
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(temp, text, { mode, flag: 'wx' });
    await chmod(temp, mode); // the umask may have narrowed it
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => {});
    throw fileError(error, 'write', path);
  }
}
