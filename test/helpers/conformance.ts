import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/**
 * The shared conformance data (`<workplace>/shared/conformance`, read in place, never copied
 * into the repository): `CONFORMANCE_DIR` when set, else `../shared/conformance` next to this
 * checkout, else the workplace's `/work/shared/conformance` (CI runs on a clone elsewhere).
 * Fails, with where it looked, when none exists: a missing suite must not pass silently.
 */
export function conformancePath(...parts: string[]): string {
  const candidates = [process.env.CONFORMANCE_DIR, join(REPO, '..', 'shared', 'conformance'), '/work/shared/conformance'].filter((c): c is string => c !== undefined && c !== '')
  for (const dir of candidates) {
    const path = join(dir, ...parts)
    if (existsSync(path)) return path
  }
  throw new Error(`conformance data ${parts.join('/')} not found in ${candidates.join(', ')}; set CONFORMANCE_DIR to the shared conformance folder`)
}
