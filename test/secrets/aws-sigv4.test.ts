import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Secret } from '../../src/config/secret.js';
import { signV4 } from '../../src/secrets/aws-sigv4.js';

// The AWS Signature Version 4 test suite's credentials and clock.
const credentials = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: new Secret('wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', 'test'),
};
const now = new Date(Date.UTC(2015, 7, 30, 12, 36, 0));
const scope = 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request';

function sign(method: string, url: string) {
  return signV4({
    method,
    url: new URL(url),
    headers: {},
    body: '',
    region: 'us-east-1',
    service: 'service',
    credentials,
    now,
  });
}

test('signatures match the AWS SigV4 test suite', () => {
  const cases = [
    [
      'GET',
      'https://example.amazonaws.com/',
      '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    ],
    [
      'POST',
      'https://example.amazonaws.com/',
      '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b',
    ],
    [
      'GET',
      'https://example.amazonaws.com/?Param2=value2&Param1=value1',
      'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500',
    ],
  ] as const;
  for (const [method, url, signature] of cases) {
    const headers = sign(method, url);
    assert.equal(
      headers.authorization,
      `${scope}, SignedHeaders=host;x-amz-date, Signature=${signature}`,
      `${method} ${url}`,
    );
    assert.equal(headers['x-amz-date'], '20150830T123600Z');
  }
});

test('temporary credentials sign their session token too', () => {
  const headers = signV4({
    method: 'POST',
    url: new URL('https://secretsmanager.eu-west-3.amazonaws.com/'),
    headers: { 'content-type': 'application/x-amz-json-1.1' },
    body: '{}',
    region: 'eu-west-3',
    service: 'secretsmanager',
    credentials: { ...credentials, sessionToken: new Secret('session-token', 'test') },
    now,
  });
  assert.equal(headers['x-amz-security-token'], 'session-token');
  assert.match(
    headers.authorization!,
    /SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,/,
  );
});
