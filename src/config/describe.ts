import { z } from 'zod'
import { ENV_BINDINGS } from './env.ts'
import { configSchema } from './schema.ts'

/** One leaf option of the configuration, for documentation and `backbeat config --env`. */
export interface OptionDoc {
  path: string
  type: string
  default: unknown
  description: string
  env: string | undefined
}

/**
 * Every leaf option of the schema with its type, default and description, in schema order.
 *
 * @example for (const o of describeOptions()) console.log(o.path, o.env ?? '')
 */
export function describeOptions(): OptionDoc[] {
  const defaults = configSchema.parse({}) as Record<string, unknown>
  const out: OptionDoc[] = []
  walk(configSchema, '', defaults, out)
  return out
}

function walk(schema: z.ZodType, path: string, defaults: unknown, out: OptionDoc[]): void {
  const inner = unwrap(schema)
  if (inner instanceof z.ZodObject) {
    const shape: Record<string, z.ZodType> = inner.shape
    for (const [key, child] of Object.entries(shape)) {
      const childDefaults = typeof defaults === 'object' && defaults !== null ? (defaults as Record<string, unknown>)[key] : undefined
      walk(child, path === '' ? key : `${path}.${key}`, childDefaults, out)
    }
    return
  }
  out.push({
    path,
    type: typeName(inner),
    default: defaults,
    description: descriptionOf(schema),
    env: ENV_BINDINGS.find((b) => b.path === path)?.name,
  })
}

function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema
  for (;;) {
    if (current instanceof z.ZodDefault || current instanceof z.ZodOptional || current instanceof z.ZodPrefault) {
      current = current.unwrap() as z.ZodType
    } else return current
  }
}

function descriptionOf(schema: z.ZodType): string {
  let current: z.ZodType = schema
  for (;;) {
    if (current.description !== undefined) return current.description
    if (current instanceof z.ZodDefault || current instanceof z.ZodOptional || current instanceof z.ZodPrefault) current = current.unwrap() as z.ZodType
    else return ''
  }
}

function typeName(schema: z.ZodType): string {
  if (schema instanceof z.ZodEnum) return (schema.options as readonly string[]).map((o) => `\`${o}\``).join(' \\| ')
  if (schema instanceof z.ZodArray) return `${typeName(schema.element as z.ZodType)}[]`
  if (schema instanceof z.ZodUnion) return (schema.options as z.ZodType[]).map(typeName).join(' \\| ')
  if (schema instanceof z.ZodNumber) return schema.format?.includes('int') === true ? 'integer' : 'number'
  if (schema instanceof z.ZodBoolean) return 'boolean'
  if (schema instanceof z.ZodURL) return 'URL'
  if (schema instanceof z.ZodString) return 'string'
  return 'value'
}
