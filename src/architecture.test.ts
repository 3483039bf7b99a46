/**
 * The layers of DESIGN.md, enforced: a module never imports from a higher
 * layer, and there are no import cycles between modules.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = dirname(fileURLToPath(import.meta.url));
const LAYERS = [
  'core',
  'store',
  'endpoints',
  'sync',
  'cluster',
  'scheduler',
  'server',
  'cli',
  'web',
];
const RANK: Record<string, number> = {
  core: 0,
  store: 1,
  endpoints: 2,
  sync: 3,
  cluster: 4,
  scheduler: 4,
  server: 5,
  cli: 6,
  web: 7,
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = join(dir, d.name);
    if (d.isDirectory()) return d.name === 'test-support' ? [] : sourceFiles(p);
    return /\.(ts|js)$/.test(d.name) && !/\.test\.ts$/.test(d.name) ? [p] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:import|export)[^'"]*?from\s+'(\.[^']+)'/g)].map((m) => m[1]!);
  return specs
    .map((s) => resolve(dirname(file), s.replace(/\.js$/, '.ts')))
    .map((p) => {
      try {
        readFileSync(p);
        return p;
      } catch {
        return p.replace(/\.ts$/, '.js');
      }
    });
}

const layerOf = (file: string): string => relative(SRC, file).split('/')[0]!;

describe('architecture', () => {
  const files = sourceFiles(SRC);
  const graph = new Map(files.map((f) => [f, importsOf(f)]));

  it('every module lives in a layer of DESIGN.md', () => {
    const stray = files.filter((f) => !LAYERS.includes(layerOf(f)));
    expect(stray.map((f) => relative(SRC, f))).toEqual([]);
  });

  it('no layer imports a higher one', () => {
    const violations: string[] = [];
    for (const [file, deps] of graph) {
      for (const dep of deps) {
        if (RANK[layerOf(dep)]! > RANK[layerOf(file)]!) {
          violations.push(`${relative(SRC, file)} -> ${relative(SRC, dep)}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });

  it('has no import cycles', () => {
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]): void => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push(
          [...path.slice(path.indexOf(file)), file].map((f) => relative(SRC, f)).join(' -> '),
        );
        return;
      }
      state.set(file, 'open');
      for (const dep of graph.get(file) ?? []) visit(dep, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of files) visit(file, []);
    expect(cycles).toEqual([]);
  });
});
