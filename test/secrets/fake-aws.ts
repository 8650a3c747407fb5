// A fake AWS Secrets Manager on loopback speaking the JSON 1.1 protocol. It checks every
// request's SigV4 signature the way AWS does, recomputed here from the received bytes, and
// answers with AWS's error types: UnrecognizedClientException, InvalidSignatureException,
// ResourceNotFoundException, ThrottlingException.
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { type FakeServer, type SeenRequest, sendJson, startFakeServer } from './fake-server.js';

export interface FakeAws extends FakeServer {
  setSecret(id: string, text: string): void;
  /** The text of a secret's AWSCURRENT version. */
  secret(id: string): string | undefined;
  /** The next `count` requests are answered with ThrottlingException. */
  throttle(count: number): void;
  /** Signatures the fake accepted and refused, in order. */
  signatures: Array<'valid' | 'invalid' | 'missing'>;
}

interface Version {
  id: string;
  text: string;
  stages: string[];
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function sha256(data: string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The signature the request should carry, or null when it is not a SigV4 request at all. */
function checkSignature(
  req: SeenRequest,
  credentials: { accessKeyId: string; secretAccessKey: string },
): 'valid' | 'invalid' | 'unknown-key' | 'missing' {
  const auth = String(req.headers.authorization ?? '');
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (!m) return 'missing';
  const [, keyId, day, region, service, signedHeaders, signature] = m as unknown as string[];
  if (keyId !== credentials.accessKeyId) return 'unknown-key';
  const names = signedHeaders!.split(';');
  for (const required of ['host', 'x-amz-date', 'x-amz-target', 'content-type']) {
    if (!names.includes(required)) return 'invalid';
  }
  const headers = names.map((n) => `${n}:${String(req.headers[n] ?? '').trim()}\n`).join('');
  const canonical = [req.method, '/', '', headers, signedHeaders, sha256(req.body)].join('\n');
  const amzDate = String(req.headers['x-amz-date']);
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  let key = hmac(`AWS4${credentials.secretAccessKey}`, day!);
  for (const part of [region!, service!, 'aws4_request']) key = hmac(key, part);
  const expected = createHmac('sha256', key).update(toSign).digest('hex');
  return expected === signature && amzDate.startsWith(day!) ? 'valid' : 'invalid';
}

export async function startFakeAws(credentials: {
  accessKeyId: string;
  secretAccessKey: string;
}): Promise<FakeAws> {
  const secrets = new Map<string, Version[]>();
  const signatures: FakeAws['signatures'] = [];
  let throttled = 0;
  const error = (type: string) => ({ __type: type, Message: 'fake' });

  const server = await startFakeServer((req, res) => {
    const check = checkSignature(req, credentials);
    signatures.push(check === 'valid' ? 'valid' : check === 'missing' ? 'missing' : 'invalid');
    if (check === 'missing')
      return sendJson(res, 400, error('MissingAuthenticationTokenException'));
    if (check === 'unknown-key') return sendJson(res, 400, error('UnrecognizedClientException'));
    if (check === 'invalid') return sendJson(res, 400, error('InvalidSignatureException'));
    if (throttled > 0) {
      throttled--;
      return sendJson(res, 400, error('ThrottlingException'));
    }
    const target = String(req.headers['x-amz-target']);
    const input = JSON.parse(req.body) as Record<string, string | string[]>;
    const versions = secrets.get(String(input.SecretId));
    if (!versions) return sendJson(res, 400, error('ResourceNotFoundException'));
    if (target === 'secretsmanager.GetSecretValue') {
      const stage = String(input.VersionStage ?? 'AWSCURRENT');
      const found = versions.find((v) => v.stages.includes(stage));
      if (!found) return sendJson(res, 400, error('ResourceNotFoundException'));
      return sendJson(res, 200, {
        ARN: `arn:aws:secretsmanager:eu-west-3:000000000000:secret:${input.SecretId}`,
        Name: input.SecretId,
        SecretString: found.text,
        VersionId: found.id,
        VersionStages: found.stages,
      });
    }
    if (target === 'secretsmanager.PutSecretValue') {
      for (const v of versions) v.stages = v.stages.includes('AWSCURRENT') ? ['AWSPREVIOUS'] : [];
      const id = String(input.ClientRequestToken ?? randomUUID());
      versions.push({ id, text: String(input.SecretString), stages: ['AWSCURRENT'] });
      return sendJson(res, 200, {
        Name: input.SecretId,
        VersionId: id,
        VersionStages: ['AWSCURRENT'],
      });
    }
    return sendJson(res, 400, error('UnknownOperationException'));
  });

  return {
    ...server,
    signatures,
    setSecret(id, text) {
      const versions = secrets.get(id) ?? [];
      for (const v of versions) v.stages = [];
      versions.push({ id: randomUUID(), text, stages: ['AWSCURRENT'] });
      secrets.set(id, versions);
    },
    secret: (id) => secrets.get(id)?.find((v) => v.stages.includes('AWSCURRENT'))?.text,
    throttle(count) {
      throttled = count;
    },
  };
}
