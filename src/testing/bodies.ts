/** A body whose name (extension) lies about what it is. */
export interface LyingBody {
  /** File name to store it under; its extension claims an image or a harmless type. */
  name: string;
  body: string;
  /** Explicit content type passed to `save`, when the lie is in the option rather than the name. */
  contentType?: string;
  /** What the body really is: `markup` must never be served as an image; `image` must never be served as markup. */
  really: 'markup' | 'image';
}

/**
 * Markup with scripts named as images, and an image named as markup. Each must be stored with a
 * content type that tells the truth (or be refused with a typed error), and served so that no
 * script runs: never as an image when it is markup, and active content only as a sandboxed
 * attachment.
 */
export const LYING_BODIES: readonly LyingBody[] = [
  { name: 'html.jpg', body: '<html><body><script>alert(document.domain)</script></body></html>', really: 'markup' },
  { name: 'upper.jpg', body: '<HTML><SCRIPT>alert(1)</SCRIPT></HTML>', really: 'markup' },
  { name: 'doctype.png', body: '<!DOCTYPE html><img src=x onerror=alert(1)>', really: 'markup' },
  { name: 'bom.gif', body: '\ufeff  <!doctype html><script>alert(1)</script>', really: 'markup' },
  { name: 'whitespace.webp', body: '\n\n\t  <script>alert(1)</script>', really: 'markup' },
  { name: 'iframe.png', body: '<iframe src="javascript:alert(1)"></iframe>', really: 'markup' },
  { name: 'svg.png', body: '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>', really: 'markup' },
  {
    name: 'svg-decl.jpg',
    body: '<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    really: 'markup',
  },
  { name: 'comment.jpg', body: '<!-- x --><html><body><script>alert(1)</script></body></html>', really: 'markup' },
  { name: 'comments.png', body: '\n<!-- one -->\n<!-- two -->\n<p><img src=x onerror=alert(1)>', really: 'markup' },
  { name: 'svg-comment.jpeg', body: '<!-- logo --><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', really: 'markup' },
  { name: 'xhtml.png', body: '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></html>', really: 'markup' },
  { name: 'explicit.jpg', body: '<script>alert(1)</script>', contentType: 'text/html', really: 'markup' },
  { name: 'gif-polyglot.html', body: 'GIF89a/*<script>alert(1)</script>*/=1;', really: 'image' },
];
