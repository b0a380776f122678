import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { z } from 'zod'
import { ConfigError, type ConfigIssue } from '../core/index.ts'
import { configFromEnv } from './env.ts'
import { PRESET_DEFAULTS } from './presets.ts'
import { configSchema, PRESETS, type BackbeatConfig, type BackbeatConfigInput, type PresetName } from './schema.ts'

export interface LoadConfigOptions {
  /** Environment to read; defaults to `process.env`. */
  env?: Readonly<Record<string, string | undefined>>
  /** Directory in which `backbeat.config.json` is looked for; defaults to `process.cwd()`. */
  cwd?: string
  /**
   * Values from code, applied above the config file and below the environment (so an
   * operator can still override what the application hard-codes).
   */
  overrides?: BackbeatConfigInput
}

const DEFAULT_FILE = 'backbeat.config.json'

/**
 * Builds the effective configuration from, lowest to highest: preset defaults, the config
 * file (`BACKBEAT_CONFIG` or `./backbeat.config.json` when present), `overrides`, and the
 * environment. Throws one `ConfigError` listing every problem; never falls back silently.
 * The result is deeply frozen.
 *
 * @example
 * const config = loadConfig({ env: { PORT: '3000', BACKBEAT_PRESET: 'production' } })
 */
export function loadConfig(options: LoadConfigOptions = {}): BackbeatConfig {
  const env = options.env ?? process.env
  const cwd = options.cwd ?? process.cwd()
  const issues: ConfigIssue[] = []

  const file = readConfigFile(env.BACKBEAT_CONFIG, cwd, issues)
  const fromEnv = configFromEnv(env)
  issues.push(...fromEnv.issues)

  const preset = choosePreset(env, file, options.overrides, fromEnv.values, issues)
  const merged = deepMerge(deepMerge(deepMerge(structuredClone(PRESET_DEFAULTS[preset]), file ?? {}), options.overrides ?? {}), fromEnv.values)
  merged.preset = preset

  const result = configSchema.safeParse(merged)
  if (!result.success) issues.push(...zodIssues(result.error, fromEnv.sources))
  if (issues.length > 0 || !result.success) throw new ConfigError(issues)
  return deepFreeze(result.data)
}

/**
 * Validates an already-assembled config object (no file, no environment), e.g. in tests.
 *
 * @example const config = parseConfig({ preset: 'bare', server: { port: 0 } })
 */
export function parseConfig(input: BackbeatConfigInput = {}): BackbeatConfig {
  const preset = input.preset ?? 'development'
  const merged = deepMerge(structuredClone(PRESET_DEFAULTS[preset]), input)
  const result = configSchema.safeParse(merged)
  if (!result.success) throw new ConfigError(zodIssues(result.error, new Map()))
  return deepFreeze(result.data)
}

function readConfigFile(explicit: string | undefined, cwd: string, issues: ConfigIssue[]): Record<string, unknown> | undefined {
  const path = explicit !== undefined && explicit !== '' ? resolve(cwd, explicit) : resolve(cwd, DEFAULT_FILE)
  if (explicit === undefined || explicit === '') {
    if (!existsSync(path)) return undefined
  }
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    issues.push({ path: 'BACKBEAT_CONFIG', message: `cannot read ${path}: ${(error as Error).message}` })
    return undefined
  }
  try {
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      issues.push({ path: path, message: 'must contain a JSON object' })
      return undefined
    }
    return parsed as Record<string, unknown>
  } catch (error) {
    issues.push({ path: path, message: `is not valid JSON: ${(error as Error).message}` })
    return undefined
  }
}

function choosePreset(
  env: Readonly<Record<string, string | undefined>>,
  file: Record<string, unknown> | undefined,
  overrides: BackbeatConfigInput | undefined,
  envValues: Record<string, unknown>,
  issues: ConfigIssue[],
): PresetName {
  const candidate = envValues.preset ?? overrides?.preset ?? file?.preset
  if (candidate !== undefined) {
    if ((PRESETS as readonly unknown[]).includes(candidate)) return candidate as PresetName
    issues.push({
      path: env.BACKBEAT_PRESET !== undefined ? 'preset (from BACKBEAT_PRESET)' : 'preset',
      message: `must be one of ${PRESETS.join(', ')}, got ${JSON.stringify(candidate)}`,
    })
    return 'development'
  }
  const environment = envValues.environment ?? overrides?.environment ?? file?.environment
  return environment === 'production' ? 'production' : 'development'
}

function zodIssues(error: z.ZodError, sources: Map<string, string>): ConfigIssue[] {
  return error.issues.map((issue) => {
    const path = issue.path.map(String).join('.')
    const source = sources.get(path)
    let message = issue.message
    if (issue.code === 'unrecognized_keys') message = `unknown option(s): ${issue.keys.join(', ')}`
    return { path: source === undefined ? path : `${path} (from ${source})`, message }
  })
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Merges `source` into `target` (objects recursively, arrays and scalars replaced). */
function deepMerge(target: object, source: object): Record<string, unknown> {
  const out = target as Record<string, unknown>
  for (const [key, value] of Object.entries(source)) {
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') continue
    const current = out[key]
    out[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value
  }
  return out
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}
