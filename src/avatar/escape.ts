// Escaping for the two places avatar text ends up: HTML attributes/text and SVG (XML) text.
// Both escape every character that can end a quoted attribute or open a tag, so a name such as
// `"><script>` or `" onload=` stays inert whether it is quoted with " or '.

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
  '=': '&#61;',
};

/** Escapes text for an HTML attribute value or element content. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"'`=]/g, (c) => HTML_ESCAPES[c]!);
}

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

// Characters XML 1.0 does not allow at all (controls other than tab/newline, lone surrogates,
// U+FFFE/U+FFFF): an SVG containing one fails to parse and shows as a broken image.
const XML_INVALID = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Escapes text for SVG/XML content or a quoted attribute, dropping characters XML forbids. */
export function escapeXml(value: unknown): string {
  return String(value ?? '')
    .replace(XML_INVALID, '')
    .replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);
}
