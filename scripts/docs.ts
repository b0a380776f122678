/**
 * Regenerates the reference tables in docs/configuration.md and docs/errors.md from the
 * config schema and the error catalogue (`npm run docs`). test/docs.test.ts fails when the
 * committed docs and the code disagree.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describeOptions, ENV_BINDINGS, LOADER_ENV } from 'backbeat/config'
import { ERROR_CODES } from 'backbeat/core'

export const DOCS_DIR = join(import.meta.dirname, '..', 'docs')

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ')
}

/** The option table of docs/configuration.md. */
export function renderOptions(): string {
  const rows = describeOptions().map((o) => {
    const def = o.default === undefined ? '—' : `\`${JSON.stringify(o.default)}\``
    return `| \`${o.path}\` | ${o.type} | ${def} | ${o.env === undefined ? '—' : `\`${o.env}\``} | ${cell(o.description)} |`
  })
  return ['| Option | Type | Default | Environment | Description |', '| --- | --- | --- | --- | --- |', ...rows].join('\n')
}

/** The environment variable table of docs/configuration.md. */
export function renderEnv(): string {
  const rows = ENV_BINDINGS.map((b) => `| \`${b.name}\` | \`${b.path}\` |`)
  const loader = LOADER_ENV.map((name) => `| \`${name}\` | path of the JSON config file (default \`./backbeat.config.json\` when present) |`)
  return ['| Variable | Sets |', '| --- | --- |', ...rows, ...loader].join('\n')
}

/** The code table of docs/errors.md. */
export function renderErrors(): string {
  const rows = Object.entries(ERROR_CODES).map(
    ([code, spec]) => `| \`${code}\` | ${spec.status} | ${spec.category} | ${cell(spec.title)} | ${cell(spec.detail)} |`,
  )
  return ['| Code | Status | Category | Title | Default detail |', '| --- | --- | --- | --- | --- |', ...rows].join('\n')
}

/** Replaces the text between `<!-- name:start -->` and `<!-- name:end -->`. */
export function replaceSection(document: string, name: string, body: string): string {
  const start = `<!-- ${name}:start -->`
  const end = `<!-- ${name}:end -->`
  const from = document.indexOf(start)
  const to = document.indexOf(end)
  if (from === -1 || to === -1) throw new Error(`markers for ${name} are missing`)
  return `${document.slice(0, from + start.length)}\n${body}\n${document.slice(to)}`
}

/** The docs as they should be, keyed by file name. */
export function renderDocs(): Record<string, string> {
  const config = readFileSync(join(DOCS_DIR, 'configuration.md'), 'utf8')
  const errors = readFileSync(join(DOCS_DIR, 'errors.md'), 'utf8')
  return {
    'configuration.md': replaceSection(replaceSection(config, 'options', renderOptions()), 'env', renderEnv()),
    'errors.md': replaceSection(errors, 'codes', renderErrors()),
  }
}

if (import.meta.main) {
  for (const [file, text] of Object.entries(renderDocs())) writeFileSync(join(DOCS_DIR, file), text)
  process.stdout.write('docs/configuration.md and docs/errors.md regenerated\n')
}
