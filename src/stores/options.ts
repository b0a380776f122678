import { z } from 'zod'

export const durationMs = (fallback: number): z.ZodDefault<z.ZodNumber> => z.number().int().positive().max(2_147_483_647).default(fallback)

export const connectionName = (fallback: string): z.ZodDefault<z.ZodString> =>
  z.string().min(1).max(64).regex(/^[\w.:-]+$/, 'use letters, digits and . _ : -').default(fallback)

/** URL with one of `protocols`; credentials are allowed but never echoed back in errors. */
export const urlWithProtocol = (protocols: readonly string[]): z.ZodString =>
  z.string().refine((value) => {
    try {
      return protocols.includes(new URL(value).protocol)
    } catch {
      return false
    }
  }, `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`)

/** Plain SQL identifier, so names can be spliced into DDL without quoting rules. */
export const sqlIdentifier = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lowercase SQL identifier (a-z, 0-9, _; at most 63 characters)')
