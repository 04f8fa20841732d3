/** The version printed by `lsinit version` (kept in step with package.json by a test). */
export const VERSION = 'v0.1.0';
