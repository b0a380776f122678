/** Why a JSON value was refused: too deep or too many members. */
export type JsonShapeViolation = 'depth' | 'keys' | undefined

/**
 * Walks a parsed JSON value without recursion (so hostile nesting cannot exhaust the stack)
 * and reports the first limit it exceeds. Cost is linear in the value's size, which the
 * body limit already bounds.
 *
 * @example checkJsonShape({ a: [[1]] }, 2, 100) // 'depth'
 */
export function checkJsonShape(value: unknown, maxDepth: number, maxKeys: number): JsonShapeViolation {
  if (typeof value !== 'object' || value === null) return undefined
  const stack: unknown[] = [value]
  const depths: number[] = [1]
  let keys = 0
  while (stack.length > 0) {
    const node = stack.pop()
    const depth = depths.pop() ?? 1
    if (depth > maxDepth) return 'depth'
    if (Array.isArray(node)) {
      for (const item of node) {
        if (typeof item === 'object' && item !== null) {
          stack.push(item)
          depths.push(depth + 1)
        }
      }
      continue
    }
    for (const key in node as Record<string, unknown>) {
      if (++keys > maxKeys) return 'keys'
      const item = (node as Record<string, unknown>)[key]
      if (typeof item === 'object' && item !== null) {
        stack.push(item)
        depths.push(depth + 1)
      }
    }
  }
  return undefined
}
