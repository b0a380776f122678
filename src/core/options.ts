import type { z } from 'zod'
import { ConfigError } from './errors.ts'

/**
 * Validates `input` against `schema` (which holds the defaults) and freezes the result;
 * every issue is reported at once, prefixed with `path`, so a bad deployment config is fixed
 * in one round.
 */
export function parseOptions<S extends z.ZodType>(path: string, schema: S, input: unknown): Readonly<z.output<S>> {
  const result = schema.safeParse(input)
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => ({
        path: [path, ...issue.path.map(String)].filter((p) => p !== '').join('.'),
        message: issue.message,
      })),
    )
  }
  return Object.freeze(result.data)
}
