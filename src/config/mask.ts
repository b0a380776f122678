import { SECRET_PARAMETER_NAMES } from '../logging/index.ts'
import { SECRET_PATHS, type BackbeatConfig } from './schema.ts'

const MASK = '********'
const URL_CREDENTIALS = /^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@/i

/**
 * A copy of the configuration safe to print or log: secret options become `********`, and
 * passwords inside connection URLs are masked, in the userinfo and in secret query
 * parameters (`redis://:********@host:6379`, `postgres://db/x?password=********`).
 *
 * @example console.log(JSON.stringify(maskConfig(config), null, 2))
 */
export function maskConfig(config: BackbeatConfig): Record<string, unknown> {
  const copy = structuredClone(config) as unknown as Record<string, unknown>
  for (const path of SECRET_PATHS) {
    const keys = path.split('.')
    let node: unknown = copy
    for (const key of keys.slice(0, -1)) node = (node as Record<string, unknown> | undefined)?.[key]
    const leaf = keys[keys.length - 1] as string
    if (typeof node === 'object' && node !== null && (node as Record<string, unknown>)[leaf] !== undefined) {
      ;(node as Record<string, unknown>)[leaf] = MASK
    }
  }
  return maskUrls(copy) as Record<string, unknown>
}

function maskUrls(value: unknown): unknown {
  if (typeof value === 'string') return maskUrlCredentials(value)
  if (Array.isArray(value)) return value.map(maskUrls)
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskUrls(v)]))
  }
  return value
}

/**
 * Masks the password (or a lone token) in a URL's userinfo.
 *
 * @example maskUrlCredentials('postgres://app:s3cret@db/music') // 'postgres://app:********@db/music'
 */
export function maskUrlCredentials(url: string): string {
  const masked = url.replace(URL_CREDENTIALS, (_whole, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':')
    if (colon === -1) return `${scheme}${MASK}@`
    return `${scheme}${userinfo.slice(0, colon)}:${MASK}@`
  })
  // Drivers also take secrets as parameters: postgres://db/x?password=…, redis://h?password=…
  return masked.includes('?') ? masked.replace(SECRET_QUERY, `$1${MASK}`) : masked
}

const SECRET_QUERY = new RegExp(`([?&](?:${SECRET_PARAMETER_NAMES.join('|')})=)[^&#]*`, 'gi')
