import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describeOptions, ENV_BINDINGS } from 'backbeat/config'
import { ERROR_CODES } from 'backbeat/core'
import { DOCS_DIR, renderDocs } from '../scripts/docs.ts'

const read = (file: string): string => readFileSync(join(DOCS_DIR, file), 'utf8')

describe('docs: kept in step with the code', () => {
  it('configuration.md documents every option and every environment variable', () => {
    const doc = read('configuration.md')
    for (const option of describeOptions()) assert.ok(doc.includes(`\`${option.path}\``), `option ${option.path} is not documented`)
    for (const binding of ENV_BINDINGS) assert.ok(doc.includes(`\`${binding.name}\``), `variable ${binding.name} is not documented`)
    for (const option of describeOptions()) assert.ok(option.description.length > 0, `option ${option.path} has no description in its schema`)
  })

  it('errors.md lists every error code', () => {
    const doc = read('errors.md')
    for (const code of Object.keys(ERROR_CODES)) assert.ok(doc.includes(`\`${code}\``), `${code} is not in docs/errors.md`)
  })

  it('the generated reference tables are current (run `npm run docs` after changing a schema or a code)', () => {
    for (const [file, expected] of Object.entries(renderDocs())) assert.equal(read(file), expected, `docs/${file} is stale`)
  })
})
