// How the CRM's photos are processed: the options given to withImages (media-storage/images).
// One module, so the backfill command writes the variants the app asks for:
//   npx media-storage variants --url env --prefix profile_images/ --config examples/crm/images.js
export default {
  variants: {
    // List pages show 64 px avatars; 2x for high-density screens.
    avatar: { width: 64, height: 64, fit: 'cover', format: 'webp', densities: [1, 2] },
  },
  // Phone photos up to 50 megapixels; larger, and decompression bombs, are refused.
  maxPixels: 50_000_000,
};
