// What the three framework recipes share: a few people in memory, the key a new photo is stored
// under, and the page that shows a person's avatar (the photo, or the default when there is none
// or it is gone). Only the framework glue differs between express/, fastify/ and web-standard/.
import { randomUUID } from 'node:crypto';
import { avatarImgHtml, escapeHtml, initialsAvatar, resolveAvatar } from 'media-storage';

/** Photos up to 5 MB; a larger upload is refused with 413 and nothing is stored. */
export const MAX_PHOTO_BYTES = 5 * 1024 * 1024;

/** The default avatar: initials as an SVG served by createAvatarHandler under /avatars. */
export const defaultAvatar = initialsAvatar({ basePath: '/avatars', size: 64 });

export function createPeople() {
  const people = new Map([
    ['1', { id: '1', name: 'Ada Lovelace', photo: null }],
    ['2', { id: '2', name: 'Grace Hopper', photo: null }],
  ]);
  return {
    get: (id) => people.get(id),
    /** Records the new photo; resolves to the key it replaced, for the caller to delete. */
    setPhoto(id, key) {
      const person = people.get(id);
      const previous = person.photo;
      person.photo = key;
      return previous;
    },
  };
}

/** A fresh key per upload, so a browser or CDN never shows the old photo under the new one's URL. */
export function photoKey(personId, filename = '') {
  const ext = /\.(jpe?g|png|gif|webp|avif)$/i.exec(filename)?.[1]?.toLowerCase() ?? 'jpg';
  return `profile_images/${personId}-${randomUUID()}.${ext === 'jpeg' ? 'jpg' : ext}`;
}

/** The person's page: avatar (photo or default) and the upload form. */
export async function personPage(storage, person) {
  const avatar = await resolveAvatar(storage, person.photo, { person, default: defaultAvatar });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(person.name)}</title></head>
<body>
<h1>${escapeHtml(person.name)}</h1>
${avatarImgHtml({ ...avatar, alt: `Photo of ${person.name}`, width: 64, height: 64 })}
<form method="post" action="/people/${encodeURIComponent(person.id)}/photo" enctype="multipart/form-data">
  <input type="file" name="photo" accept="image/*" required> <button>Upload</button>
</form>
</body></html>
`;
}

/** The status for a failed save: too large is the user's mistake (413), the rest is ours (500). */
export function uploadErrorStatus(err) {
  return err?.code === 'TOO_LARGE' ? 413 : err?.code === 'INVALID_INPUT' ? 400 : 500;
}
