/**
 * A bench script's plain options, `--name value` and `--name` switches. The benches are run by people who
 * read their source; mcnc's own commands declare their flags and parse them in src/cli/args.ts.
 */
const argv = process.argv.slice(2);

/** The value after `--name`, or `fallback`. */
export function option(name: string, fallback: string): string;
export function option(name: string): string | undefined;
export function option(name: string, fallback?: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1]! : fallback;
}

/** Whether the switch `--name` is given. */
export const has = (name: string): boolean => argv.includes(`--${name}`);
