/**
 * RFC 9110 entity tags for playlists, whose `snapshot_id` is the opaque tag: the ETag sent
 * with a playlist, and the `If-Match` (§13.1.1) and `If-None-Match` (§13.1.2) comparisons.
 */

/** etagc: any visible ASCII but DQUOTE (obs-text is left out: snapshot IDs are ASCII). */
const OPAQUE = /^[\x21\x23-\x7e]*$/
/** One member of an entity-tag list; DQUOTE cannot occur inside, so commas inside are safe. */
const MEMBER = /(W\/)?"([^"]*)"/g

/** One entity tag of a request header. */
export interface EntityTag {
  weak: boolean
  opaque: string
}

/**
 * The strong entity tag of a snapshot: `"<snapshot_id>"`. Throws on a value that cannot be
 * an opaque tag, which would be a corrupt snapshot_id, rather than send a broken header.
 *
 * @example etag('4uLU6hMCjMI75M1A2tKUQC') // '"4uLU6hMCjMI75M1A2tKUQC"'
 */
export function etag(snapshotId: string): string {
  if (!OPAQUE.test(snapshotId)) throw new TypeError('a snapshot_id must be visible ASCII without DQUOTE to be an entity tag')
  return `"${snapshotId}"`
}

/**
 * The entity tags of an `If-Match`/`If-None-Match` value, or `'*'`. Members that are not
 * entity tags are skipped: they can match nothing.
 *
 * @example parseEntityTags('W/"a", "b"') // [{ weak: true, opaque: 'a' }, { weak: false, opaque: 'b' }]
 */
export function parseEntityTags(header: string): '*' | EntityTag[] {
  if (header.trim() === '*') return '*'
  return [...header.matchAll(MEMBER)].map((match) => ({ weak: match[1] !== undefined, opaque: match[2] ?? '' }))
}

/**
 * `If-Match` holds for the current snapshot: `*`, or a listed tag that matches it by strong
 * comparison (a weak tag never does).
 */
export function ifMatchHolds(header: string, snapshotId: string): boolean {
  const tags = parseEntityTags(header)
  return tags === '*' || tags.some((tag) => !tag.weak && tag.opaque === snapshotId)
}

/**
 * `If-None-Match` fails (answer 304 to a GET) for the current snapshot: `*` (the playlist
 * exists), or a listed tag that matches it by weak comparison (`W/` is ignored).
 */
export function ifNoneMatchFails(header: string, snapshotId: string): boolean {
  const tags = parseEntityTags(header)
  return tags === '*' || tags.some((tag) => tag.opaque === snapshotId)
}
