import { invalidField } from '../errors.ts'
import { parseId, type ResourceKind } from '../ids.ts'

/** Spotify's limit on `ids=`; bounds the `= ANY(...)` array. */
export const MAX_IDS = 50

/**
 * Splits and checks an `ids=` list: every entry must be a valid ID (400
 * ERR_VALIDATION_ID_INVALID naming the first bad one), at most {@link MAX_IDS}.
 */
export function parseIdList(kind: ResourceKind, raw: string): string[] {
  const ids = raw.split(',')
  if (ids.length > MAX_IDS) throw invalidField('querystring', '/ids', `must list at most ${MAX_IDS} IDs, got ${ids.length}`)
  return ids.map((id) => parseId(kind, id))
}
