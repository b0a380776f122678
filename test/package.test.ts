import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '..')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string
  type: string
  engines: { node: string }
  exports: Record<string, string | Record<string, string>>
  devDependencies: Record<string, string>
}

function walk(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry)
    if (statSync(path).isDirectory()) walk(path, out)
    else if (path.endsWith('.ts')) out.push(path)
  }
  return out
}

describe('package: shape', () => {
  it('is the ESM package backbeat for Node >= 22.15, pinning Node 24 for its scripts', () => {
    assert.equal(pkg.name, 'backbeat')
    assert.equal(pkg.type, 'module')
    assert.equal(pkg.engines.node, '>=22.15')
    assert.match(pkg.devDependencies.node ?? '', /^\^?24\./)
  })

  it('exports exactly one subpath per capability folder, each pointing at its index.ts', () => {
    const folders = readdirSync(join(root, 'src')).filter((f) => statSync(join(root, 'src', f)).isDirectory())
    const subpaths = Object.keys(pkg.exports)
      .filter((k) => k !== '.' && k !== './package.json')
      .map((k) => k.slice(2))
    assert.deepEqual([...subpaths].sort(), [...folders].sort(), 'package.json exports and src/ folders disagree')
    for (const folder of folders) {
      const entry = pkg.exports[`./${folder}`] as Record<string, string>
      assert.equal(entry['backbeat-source'], `./src/${folder}/index.ts`)
      assert.equal(entry.types, `./dist/src/${folder}/index.d.ts`)
      assert.equal(entry.default, `./dist/src/${folder}/index.js`)
      assert.ok(existsSync(join(root, 'src', folder, 'index.ts')), `src/${folder}/index.ts is missing`)
    }
  })

  it('resolves every subpath through the package name, as a user would import it', async () => {
    for (const key of Object.keys(pkg.exports).filter((k) => k !== './package.json')) {
      const specifier = key === '.' ? 'backbeat' : `backbeat/${key.slice(2)}`
      const mod = (await import(specifier)) as Record<string, unknown>
      assert.ok(Object.keys(mod).length > 0, `${specifier} exports nothing`)
    }
  })
})

describe('package: module boundaries', () => {
  const files = walk(join(root, 'src')).filter((f) => !f.endsWith('.test.ts'))
  const importsOf = (file: string): string[] => {
    const text = readFileSync(file, 'utf8')
    const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/g), ...text.matchAll(/import\('([^']+)'\)/g)].map((m) => m[1] as string)
    return specs.filter((s) => s.startsWith('.')).map((s) => resolve(dirname(file), s))
  }

  it('has no import cycles', () => {
    const graph = new Map(files.map((f) => [f, importsOf(f).filter((t) => t.endsWith('.ts'))]))
    const state = new Map<string, 'visiting' | 'done'>()
    const cycles: string[] = []
    const visit = (node: string, stack: string[]): void => {
      if (state.get(node) === 'done') return
      if (state.get(node) === 'visiting') {
        cycles.push([...stack.slice(stack.indexOf(node)), node].map((f) => relative(root, f)).join(' -> '))
        return
      }
      state.set(node, 'visiting')
      for (const next of graph.get(node) ?? []) visit(next, [...stack, node])
      state.set(node, 'done')
    }
    for (const file of graph.keys()) visit(file, [])
    assert.deepEqual(cycles, [])
  })

  it('reaches other capabilities only through their index.ts', () => {
    const offenders: string[] = []
    for (const file of files) {
      const folder = relative(join(root, 'src'), file).split('/')[0]
      for (const target of importsOf(file)) {
        const rel = relative(join(root, 'src'), target).split('/')
        if (rel[0] === '..' || rel[0] === folder || rel.length === 1) continue
        if (rel[1] !== 'index.ts') offenders.push(`${relative(root, file)} imports ${relative(root, target)}`)
      }
    }
    assert.deepEqual(offenders, [])
  })

  it('keeps the reference app on public exports only', () => {
    const offenders = walk(join(root, 'app'))
      .flatMap((file) => importsOf(file).map((target) => [file, target] as const))
      .filter(([, target]) => relative(root, target).startsWith('src'))
      .map(([file, target]) => `${relative(root, file)} imports ${relative(root, target)}`)
    assert.deepEqual(offenders, [])
  })
})
