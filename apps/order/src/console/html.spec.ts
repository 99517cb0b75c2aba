import { escapeHtml, html, raw } from './html';

describe("the console's HTML template", () => {
  it('escapes every interpolated value, in text and in attributes', () => {
    const evil = `<script>alert("x")</script>' onmouseover='steal()`;
    const page = html`<p title="${evil}">${evil}</p>`.text;
    expect(page).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onmouseover=&#39;steal()">' +
        '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onmouseover=&#39;steal()</p>',
    );
    expect(page).not.toContain('<script>');
  });

  it('escapes the values of lists and leaves HTML it made as it is (no double escaping)', () => {
    const items = ['a&b', '<i>'].map((item) => html`<li>${item}</li>`);
    // prettier-ignore
    const list = html`<ul>${items}</ul>`;
    expect(list.text).toBe('<ul><li>a&amp;b</li><li>&lt;i&gt;</li></ul>');
  });

  it('writes numbers, and nothing for null, undefined and booleans', () => {
    expect(html`${0}|${12.5}|${null}|${undefined}|${false}|${true}`.text).toBe('0|12.5||||');
  });

  it('takes markup as it is only through raw (constants) and escapes the five special characters', () => {
    expect(html`${raw('<br>')}`.text).toBe('<br>');
    expect(escapeHtml(`&<>"'`)).toBe('&amp;&lt;&gt;&quot;&#39;');
  });
});
