// HTML for the CRM's one page. Every value from the database goes through escapeHtml or
// avatarImgHtml; nothing is concatenated raw.
import { avatarFallbackScriptTag, avatarImgHtml, escapeHtml } from 'media-storage';
import { ROLES } from './people.js';

const TITLES = { organiser: 'Organisers', agent: 'Agents', lead: 'Leads' };

function personCard(person, avatar, variant) {
  const id = encodeURIComponent(person.id);
  const img = avatarImgHtml({
    ...avatar,
    alt: `Photo of ${person.name}`,
    width: 64,
    height: 64,
    className: 'avatar',
    csp: variant === 'inline' ? 'inline' : 'strict',
    attributes: { 'data-person-id': person.id, 'data-is-default': String(avatar.isDefault) },
  });
  const photo = person.photo ? `<code>${escapeHtml(person.photo)}</code>` : '<em>no photo</em>';
  return `<li class="person" data-person-id="${escapeHtml(person.id)}">
  ${img}
  <div class="details">
    <strong class="name">${escapeHtml(person.name)}</strong>
    <span class="photo-path">${photo}</span>
    <form method="post" action="/people/${id}/photo" enctype="multipart/form-data" class="upload">
      <label>Photo <input type="file" name="photo" accept="image/png,image/jpeg,image/gif,image/webp,image/avif" required></label>
      <button type="submit">Upload</button>
    </form>
    ${person.photo ? `<form method="post" action="/people/${id}/photo/wipe" class="wipe"><button type="submit" title="Deletes the file behind the app's back, as a redeploy on an ephemeral disk would">Wipe file (simulate redeploy)</button></form>` : ''}
  </div>
</li>`;
}

export function pageHtml({ people, avatars, storageDescription, variant, message, error }) {
  const sections = ROLES.map((role) => {
    const cards = people.map((p, i) => [p, avatars[i]]).filter(([p]) => p.role === role).map(([p, a]) => personCard(p, a, variant));
    return `<section><h2>${TITLES[role]}</h2><ul class="people">${cards.join('\n') || '<li class="empty">Nobody yet.</li>'}</ul></section>`;
  });
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CRM: people</title>
<link rel="stylesheet" href="/static/crm.css">
${variant === 'inline' ? '' : avatarFallbackScriptTag({ src: '/avatars/fallback.js' })}
</head>
<body>
<header><h1>CRM</h1><p>Photos: ${escapeHtml(storageDescription)} · fallback: ${variant === 'inline' ? 'inline onerror (<a href="/">strict CSP version</a>)' : 'strict CSP script (<a href="/?fallback=inline">inline version</a>)'}</p></header>
${message ? `<p class="message" role="status">${escapeHtml(message)}</p>` : ''}
${error ? `<p class="message error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/people" class="add">
  <label>Name <input name="name" required maxlength="200"></label>
  <label>Role <select name="role">${ROLES.map((r) => `<option value="${r}">${r}</option>`).join('')}</select></label>
  <button type="submit">Add person</button>
</form>
${sections.join('\n')}
</body>
</html>`;
}

export const CSS = `body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem;color:#1b1b1b}
header p{color:#555}
.people{list-style:none;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(22rem,1fr));gap:1rem}
.person{display:flex;gap:1rem;align-items:flex-start;border:1px solid #ddd;border-radius:.5rem;padding:.75rem}
.avatar{border-radius:50%;object-fit:cover;flex:none;background:#eee}
.details{display:flex;flex-direction:column;gap:.35rem;min-width:0}
.photo-path code{font-size:.8rem;word-break:break-all}
.message{background:#eef6ff;border:1px solid #b6d4fe;padding:.5rem;border-radius:.25rem}
.message.error{background:#fdecea;border-color:#f5b8b1}
.add{display:flex;gap:1rem;align-items:end;margin:1rem 0}
form.upload,form.wipe{margin:0}
`;
