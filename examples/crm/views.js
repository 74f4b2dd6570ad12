// HTML for the CRM's one page. Every value from the database goes through escapeHtml or
// avatarImgHtml; nothing is concatenated raw.
import { avatarFallbackScriptTag, avatarImgHtml, escapeHtml } from 'media-storage';
import { ROLES } from './people.js';

const TITLES = { organiser: 'Organisers', agent: 'Agents', lead: 'Leads' };

const ACCEPT = 'image/png,image/jpeg,image/gif,image/webp,image/avif';

function roleOptions(selected) {
  return ROLES.map((r) => `<option value="${r}"${r === selected ? ' selected' : ''}>${r[0].toUpperCase()}${r.slice(1)}</option>`).join('');
}

function personCard(person, avatar, variant) {
  const id = encodeURIComponent(person.id);
  const inputId = `photo-${escapeHtml(person.id)}`;
  const img = avatarImgHtml({
    ...avatar,
    alt: `Photo of ${person.name}`,
    width: 64,
    height: 64,
    className: 'avatar',
    csp: variant === 'inline' ? 'inline' : 'strict',
    attributes: { 'data-person-id': person.id, 'data-is-default': String(avatar.isDefault) },
  });
  return `<li class="person" data-person-id="${escapeHtml(person.id)}">
  ${img}
  <div class="details">
    <strong class="name">${escapeHtml(person.name)}</strong>
    <span class="photo-status">${avatar.isDefault ? 'No photo yet' : 'Photo on file'}</span>
    <form method="post" action="/people/${id}/photo" enctype="multipart/form-data" class="upload">
      <input type="file" name="photo" id="${inputId}" class="file-input" accept="${ACCEPT}" required>
      <label for="${inputId}" class="button secondary file-label">${avatar.isDefault ? 'Choose a photo' : 'Change photo'}</label>
      <span class="file-name" aria-live="polite"></span>
      <button type="submit" class="button">Upload</button>
    </form>
    <details class="edit">
      <summary>Edit</summary>
      <form method="post" action="/people/${id}" class="edit-form">
        <label>Name <input name="name" required maxlength="200" value="${escapeHtml(person.name)}"></label>
        <label>Role <select name="role">${roleOptions(person.role)}</select></label>
        <button type="submit" class="button">Save</button>
      </form>
      <form method="post" action="/people/${id}/delete" class="delete-form" data-confirm="Delete ${escapeHtml(person.name)} and their photo?">
        <button type="submit" class="button danger">Delete</button>
      </form>
    </details>
  </div>
</li>`;
}

export function pageHtml({ people, avatars, storageDescription, variant, message, error }) {
  const sections = ROLES.map((role) => {
    const cards = people
      .map((p, i) => [p, avatars[i]])
      .filter(([p]) => p.role === role)
      .map(([p, a]) => personCard(p, a, variant));
    return `<section><h2>${TITLES[role]}</h2><ul class="people">${cards.join('\n') || '<li class="empty">Nobody yet.</li>'}</ul></section>`;
  });
  const withPhotos = people.filter((p, i) => p.photo && !avatars[i].isDefault);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CRM: people</title>
<link rel="stylesheet" href="/static/crm.css">
${variant === 'inline' ? '' : avatarFallbackScriptTag({ src: '/avatars/fallback.js' })}
<script src="/static/crm.js" defer></script>
</head>
<body>
<header><h1>CRM</h1><p>People and their profile photos</p></header>
${message ? `<p class="message" role="status">${escapeHtml(message)}</p>` : ''}
${error ? `<p class="message error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/people" class="add">
  <label>Name <input name="name" required maxlength="200" placeholder="Ada Lovelace"></label>
  <label>Role <select name="role">${roleOptions('organiser')}</select></label>
  <button type="submit" class="button">Add person</button>
</form>
${sections.join('\n')}
<aside class="demo" aria-labelledby="demo-title">
  <h2 id="demo-title">Demo: what a redeploy does</h2>
  <p>On Render, Heroku or Fly without a volume, every deploy starts from an empty disk: the photo
  files are gone while the database still points at them. Simulate it and watch each avatar fall
  back to its initials instead of a broken image.</p>
  <form method="post" action="/demo/redeploy" class="redeploy">
    <label>Lose <select name="person"><option value="">every photo file</option>${withPhotos.map((p) => `<option value="${escapeHtml(p.id)}">the photo of ${escapeHtml(p.name)}</option>`).join('')}</select></label>
    <button type="submit" class="button secondary">Simulate a redeploy</button>
  </form>
  <p class="meta">Photos are stored on: ${escapeHtml(storageDescription)} · avatar fallback: ${variant === 'inline' ? 'inline onerror (<a href="/">strict CSP version</a>)' : 'strict CSP script (<a href="/?fallback=inline">inline version</a>)'}</p>
</aside>
</body>
</html>`;
}

/** The page's only script (CSP: script-src 'self'): photo preview before upload, delete confirmation. */
export const SCRIPT = `document.addEventListener('change', (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || !input.classList.contains('file-input')) return;
  const form = input.form;
  const name = form.querySelector('.file-name');
  // The preview is made on demand, so the page holds no empty image before a photo is chosen.
  let preview = form.querySelector('.preview');
  if (preview) URL.revokeObjectURL(preview.src);
  const file = input.files && input.files[0];
  if (!file) {
    if (preview) preview.remove();
    name.textContent = '';
    return;
  }
  if (!preview) {
    preview = Object.assign(document.createElement('img'), { className: 'preview', alt: 'Preview of the chosen photo', width: 40, height: 40 });
    name.before(preview);
  }
  preview.src = URL.createObjectURL(file);
  name.textContent = file.name;
  form.classList.add('chosen');
});
document.addEventListener('submit', (event) => {
  const message = event.target.getAttribute('data-confirm');
  if (message && !window.confirm(message)) event.preventDefault();
});
`;

export const CSS = `:root{--accent:#2563eb;--accent-dark:#1d4ed8;--line:#e5e7eb;--muted:#6b7280;--danger:#b91c1c}
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;padding:2rem 1.25rem;max-width:64rem;color:#111827;background:#f9fafb}
header h1{margin:0}
header p{color:var(--muted);margin:.25rem 0 1rem}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
.button{display:inline-flex;align-items:center;gap:.35rem;border:1px solid var(--accent);background:var(--accent);color:#fff;border-radius:.4rem;padding:.4rem .8rem;font:inherit;font-size:.9rem;cursor:pointer;line-height:1.2}
.button:hover{background:var(--accent-dark)}
.button.secondary{background:#fff;color:var(--accent)}
.button.secondary:hover{background:#eff6ff}
.button.danger{background:#fff;color:var(--danger);border-color:#fca5a5}
.button.danger:hover{background:#fef2f2}
input,select{font:inherit;padding:.35rem .5rem;border:1px solid #d1d5db;border-radius:.35rem;background:#fff}
label{display:flex;flex-direction:column;gap:.2rem;font-size:.85rem;color:#374151}
.people{list-style:none;padding:0;margin:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(20rem,1fr));gap:.75rem}
.person{display:flex;gap:1rem;align-items:flex-start;background:#fff;border:1px solid var(--line);border-radius:.6rem;padding:.9rem}
.empty{color:var(--muted)}
.avatar{border-radius:50%;object-fit:cover;flex:none;background:#eee}
.details{display:flex;flex-direction:column;gap:.45rem;min-width:0;flex:1}
.name{font-size:1rem;overflow-wrap:anywhere}
.photo-status{font-size:.8rem;color:var(--muted)}
form{margin:0}
.upload{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem}
.file-input{position:absolute;width:1px;height:1px;opacity:0;overflow:hidden}
.file-input:focus-visible+.file-label{outline:2px solid var(--accent);outline-offset:2px}
.file-label{flex-direction:row;font-size:.9rem;color:var(--accent)}
.preview{border-radius:50%;object-fit:cover;border:1px solid var(--line)}
.file-name{font-size:.8rem;color:var(--muted);overflow-wrap:anywhere;max-width:10rem}
.edit summary{cursor:pointer;font-size:.85rem;color:var(--accent);width:max-content}
.edit-form{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin:.5rem 0}
.message{background:#ecfdf5;border:1px solid #a7f3d0;color:#065f46;padding:.6rem .8rem;border-radius:.4rem}
.message.error{background:#fef2f2;border-color:#fecaca;color:var(--danger)}
.add{display:flex;flex-wrap:wrap;gap:.75rem;align-items:end;margin:1rem 0;background:#fff;border:1px solid var(--line);border-radius:.6rem;padding:.9rem}
.demo{margin-top:2.5rem;border:2px dashed #f59e0b;background:#fffbeb;border-radius:.6rem;padding:1rem}
.demo h2{margin-top:0}
.demo p{font-size:.9rem;color:#4b5563}
.redeploy{display:flex;flex-wrap:wrap;gap:.75rem;align-items:end}
.meta{font-size:.8rem}
`;
