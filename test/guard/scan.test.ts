import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createScanner, redactText, scanText } from '../../src/guard/index.js';
import { generateVirtualKey, isWellFormedVirtualKey } from '../../src/keys/format.js';

const MISTRAL = 'FAKEq9Zt3LmN7xYvB2cD8eF4gH6jK1pR';

test('a Mistral key is reported next to a MISTRAL_ name and not as a bare id', () => {
  assert.deepEqual(
    scanText(`MISTRAL_API_KEY=${MISTRAL}`).map((f) => [f.detector, f.start, f.end]),
    [['mistral_api_key', 16, 48]],
  );
  assert.deepEqual(scanText(`request ${MISTRAL} done`), []);
});

test('redaction writes a typed placeholder for each value', () => {
  const { text } = redactText(
    `mail jane.roe@example.com, card 4111 1111 1111 1111, MISTRAL_API_KEY=${MISTRAL}`,
  );
  assert.equal(
    text,
    'mail [REDACTED:EMAIL], card [REDACTED:CARD], MISTRAL_API_KEY=[REDACTED:MISTRAL_KEY]',
  );
});

test('offsets point into the original text when the value was escaped, encoded or disguised', () => {
  const samples = [
    'x jane.roe\\u0040example.com y',
    'x jane.roe%40example.com y',
    'x jane\u200b.roe＠example.com y',
    'x ４１１１ １１１１ １１１１ １１１１ y',
  ];
  for (const text of samples) {
    const [f] = scanText(text);
    assert.ok(f, text);
    assert.equal(f.start, 2);
    assert.equal(f.end, text.length - 2);
  }
});

test('a value inside a base64 run is found and its run characters are redacted', () => {
  const blob = Buffer.from('reach me at jane.roe@example.com soon').toString('base64');
  const [f] = scanText(`data ${blob} end`);
  assert.equal(f?.detector, 'email');
  assert.equal(f?.encoding, 'base64');
  assert.ok(f.start >= 5 && f.end <= 5 + blob.length);
});

test('a 13-digit millisecond timestamp that passes Luhn is not a card', () => {
  assert.deepEqual(scanText('ts=1700000000007'), []);
});

test('the 2-series Mastercard range is a card', () => {
  assert.equal(scanText('card 2223 0031 2200 3222')[0]?.detector, 'payment_card');
});

test('SSNs in never-issued ranges are refused', () => {
  for (const ssn of ['000-12-3456', '666-12-3456', '912-34-5678', '123-00-4567', '123-45-0000']) {
    assert.deepEqual(scanText(`SSN ${ssn}`), [], ssn);
  }
  assert.equal(scanText('SSN 123-45-6789')[0]?.detector, 'us_ssn');
});

test('IP addresses are only reported when enabled', () => {
  assert.deepEqual(scanText('host 10.1.2.3 up'), []);
  assert.equal(scanText('host 10.1.2.3 up', { enable: ['ip_address'] })[0]?.detector, 'ip_address');
});

test('a virtual key is found by shape, and by checksum when the key module validator is passed', () => {
  const key = generateVirtualKey();
  const typo = `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`;
  assert.equal(scanText(`Bearer ${typo}`)[0]?.detector, 'virtual_key');
  const strict = createScanner({ virtualKeyValidator: isWellFormedVirtualKey });
  assert.equal(strict.scan(`Bearer ${key}`)[0]?.detector, 'virtual_key');
  assert.deepEqual(strict.scan(`Bearer ${typo}`), []);
});

test('custom patterns and word lists are reported under their own id', () => {
  const scanner = createScanner({
    customPatterns: [
      { id: 'employee_id', pattern: /EMP-\d{6}/, category: 'pii', keywords: ['emp-'] },
    ],
    customWords: [{ id: 'project_name', words: ['Blue Falcon'] }],
  });
  const { text } = scanner.redact('EMP-123456 works on blue falcon, not bluefalcon');
  assert.equal(text, '[REDACTED:EMPLOYEE_ID] works on [REDACTED:PROJECT_NAME], not bluefalcon');
});

test('unsafe custom patterns are refused at setup', () => {
  for (const pattern of ['a+', '(a|b)*', 'x{2,}', '(a{1,9}){1,9}', '(\\w)\\1', `.{0,600}`]) {
    assert.throws(
      () => createScanner({ customPatterns: [{ id: 'bad', pattern }] }),
      TypeError,
      pattern,
    );
  }
});

test('unknown detector ids are refused at setup', () => {
  assert.throws(() => createScanner({ disable: ['no_such_detector'] }), TypeError);
});

test('prose around secret words is not an assignment', () => {
  for (const t of ['the token: idea', 'password: required', 'max_tokens: 1024', 'the key: idea']) {
    assert.deepEqual(scanText(t), [], t);
  }
});

test('an email address with letters outside ASCII is redacted whole', () => {
  for (const address of ['jäne.döe@example.com', 'jane@exámple.com', 'अजय@डाटा.भारत']) {
    assert.equal(redactText(`mail ${address} ok`).text, 'mail [REDACTED:EMAIL] ok', address);
  }
  assert.deepEqual(scanText('größe@über and café@2x.png'), []);
});

test('card numbers are found in digits of other scripts and with other group separators', () => {
  const written = [
    '٤١١١ ١١١١ ١١١١ ١١١١',
    '४१११ ११११ ११११ ११११',
    '4111.1111.1111.1111',
    '4111/1111/1111/1111',
    '4111_1111_1111_1111',
    '4111\n1111\n1111\n1111',
  ];
  for (const card of written) {
    assert.equal(redactText(`card ${card} ok`).text, 'card [REDACTED:CARD] ok', card);
  }
  assert.deepEqual(scanText('version 4111.1111.1111.1112, mixed 4111.1111-1111 1111'), []);
});

test('typed parameters and field names are code, not secret assignments', () => {
  for (const code of [
    'function record(token: metricInput) {}',
    'const form = { password: PasswordField };',
    'type Login = { secret: SecretRef };',
  ]) {
    assert.deepEqual(scanText(code), [], code);
  }
  assert.equal(scanText('password=hunter2x9Q')[0]?.detector, 'secret_assignment');
});
