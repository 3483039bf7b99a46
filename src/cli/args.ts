/**
 * Command-line flags derived from a component's zod schema: every option is
 * a `--kebab-case` flag and a `TONGBU_SNAKE_CASE` environment variable, and
 * its description is the help text.
 */
import { parseArgs } from 'node:util';
import type { z } from 'zod/v3';
import { TongbuError } from '../core/errors.js';

type FlagType = 'boolean' | 'string' | 'array';

export interface FlagSpec {
  readonly name: string;
  readonly flag: string;
  readonly env: string;
  readonly type: FlagType;
  readonly description: string;
}

interface ZodDefLike {
  readonly typeName: string;
  readonly innerType?: { readonly _def: ZodDefLike };
}

function flagType(schema: z.ZodTypeAny): FlagType {
  let def = (schema as unknown as { _def: ZodDefLike })._def;
  while ((def.typeName === 'ZodOptional' || def.typeName === 'ZodDefault') && def.innerType) {
    def = def.innerType._def;
  }
  if (def.typeName === 'ZodBoolean') return 'boolean';
  if (def.typeName === 'ZodArray') return 'array';
  return 'string';
}

export function flagsOf(schema: z.AnyZodObject): FlagSpec[] {
  return Object.entries(schema.shape as Record<string, z.ZodTypeAny>).map(([name, field]) => {
    const kebab = name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    return {
      name,
      flag: kebab,
      env: `TONGBU_${kebab.replaceAll('-', '_').toUpperCase()}`,
      type: flagType(field),
      description: field.description ?? '',
    };
  });
}

export interface ParsedCommandLine {
  readonly positionals: string[];
  /** Schema options from the environment, overridden by flags. */
  readonly options: Record<string, unknown>;
  /** CLI-only flags (not in the schema). */
  readonly cli: Record<string, string | boolean | undefined>;
}

export function parseCommandLine(
  argv: readonly string[],
  flags: readonly FlagSpec[],
  cliFlags: Record<string, { type: 'boolean' | 'string'; short?: string }>,
  env: NodeJS.ProcessEnv = process.env,
): ParsedCommandLine {
  const spec: Record<string, { type: 'boolean' | 'string'; multiple?: boolean; short?: string }> = {
    ...cliFlags,
  };
  for (const f of flags) {
    spec[f.flag] = f.type === 'array' ? { type: 'string', multiple: true } : { type: f.type };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: spec, allowPositionals: true, strict: true });
  } catch (err) {
    throw new TongbuError('BAD_ARGUMENT', (err as Error).message.split('\n')[0] ?? 'bad arguments');
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const options: Record<string, unknown> = {};
  for (const f of flags) {
    const fromEnv = env[f.env];
    if (fromEnv !== undefined && fromEnv !== '') {
      options[f.name] =
        f.type === 'boolean'
          ? !['0', 'false', 'no'].includes(fromEnv.toLowerCase())
          : f.type === 'array'
            ? fromEnv.split(',')
            : fromEnv;
    }
    const v = values[f.flag];
    if (v !== undefined) options[f.name] = v;
  }
  const cli: Record<string, string | boolean | undefined> = {};
  for (const name of Object.keys(cliFlags)) {
    const v = values[name];
    if (typeof v === 'string' || typeof v === 'boolean') cli[name] = v;
  }
  return { positionals: parsed.positionals, options, cli };
}

export function helpFor(flags: readonly FlagSpec[]): string {
  return flags
    .map((f) => {
      const arg = f.type === 'boolean' ? '' : f.type === 'array' ? ' GLOB' : ' VALUE';
      return `  --${f.flag}${arg}`.padEnd(28) + `${f.description} [${f.env}]`;
    })
    .join('\n');
}
