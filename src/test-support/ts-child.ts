/**
 * Child `node` processes that run the project's TypeScript sources (for
 * kill -9 tests): a module hook transpiles `.ts` with the project's
 * typescript and maps `./x.js` imports to `./x.ts`, as the sources are written.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const HOOKS = `
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from ${JSON.stringify(pathToFileURL(createRequire(import.meta.url).resolve('typescript')).href)};
export async function resolve(specifier, context, next) {
  if (specifier.startsWith('.') && specifier.endsWith('.js') && context.parentURL?.endsWith('.ts')) {
    const url = new URL(specifier.replace(/\\.js$/, '.ts'), context.parentURL);
    if (existsSync(fileURLToPath(url))) return { url: url.href, shortCircuit: true };
  }
  return next(specifier, context);
}
export async function load(url, context, next) {
  if (!url.endsWith('.ts')) return next(url, context);
  const { outputText } = ts.transpileModule(readFileSync(fileURLToPath(url), 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
  });
  return { format: 'module', source: outputText, shortCircuit: true };
}
`;

/**
 * Writes `dir/<name>` (ESM) that registers the hook, then runs `body`, which
 * may `await import()` a `.ts` file by URL. Returns the script's path.
 */
export function writeTsChildScript(dir: string, name: string, body: string): string {
  writeFileSync(join(dir, 'ts-hooks.mjs'), HOOKS);
  const file = join(dir, name);
  writeFileSync(
    file,
    `import { register } from 'node:module';
register(new URL('./ts-hooks.mjs', import.meta.url));
${body}`,
  );
  return file;
}
