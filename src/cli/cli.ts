/**
 * mcnc's command line. A UserError (bad flag, bad file) is one line on stderr and exit 2; anything
 * else is a bug, still one line (set MCNC_DEBUG=1 for the stack) and exit 70.
 */
import { UserError } from "../errors.js";
import { LIBRARY } from "../format/model-file.js";
import { DEFAULT_MEMORY_LIMIT, setMemoryLimit } from "../limits.js";
import { didYouMean, formatFlags, parseArgs, wrap, type Flag } from "./args.js";
import type { Command } from "./command.js";
import { compareCommand } from "./commands/compare.js";
import { compressCommand } from "./commands/compress.js";
import { decompressCommand } from "./commands/decompress.js";
import { evalCommand } from "./commands/eval.js";
import { generateCommand } from "./commands/generate.js";
import { inspectCommand } from "./commands/inspect.js";
import { mergeCommand } from "./commands/merge.js";
import { predictCommand } from "./commands/predict.js";
import { trainCommand } from "./commands/train.js";

export const COMMANDS: Command[] = [trainCommand, evalCommand, generateCommand, predictCommand, inspectCommand, decompressCommand, mergeCommand, compressCommand, compareCommand];

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    "mcnc: Manifold-Constrained Neural Compression",
    "",
    "usage: mcnc <command> [flags]",
    "",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    "",
    "mcnc <command> --help (or mcnc help <command>) lists a command's flags, with examples.",
  ].join("\n");
}

/** Every command takes it: what a file, flag set or data header implies is checked against it first. */
const MAX_MEMORY_FLAG: Flag = {
  name: "max-memory",
  type: "int",
  help: "refuse work that would need more memory than this many MiB (checked before allocating)",
  default: DEFAULT_MEMORY_LIMIT / 2 ** 20,
  min: 1,
  max: 2 ** 24,
  group: "output",
};

/** Every flag a command takes: its methods' options (listed first in help, after its own ungrouped flags), its own, and --max-memory. */
export const flagsOf = (c: Command): Flag[] => [...(c.optionFlags?.() ?? []), ...c.flags, MAX_MEMORY_FLAG];

/** Help lines fit the terminal; 100 columns when the output is not one. */
const columns = () => Math.max(60, Math.min(process.stdout.columns ?? 100, 160));

function commandHelp(c: Command): string {
  const examples = c.examples?.length ? ["", "examples:", ...c.examples.map((e) => `  ${e}`)] : [];
  const usage = wrap(`usage: ${c.usage}`, columns()).map((l, i) => (i === 0 ? l : `    ${l}`));
  return [...usage, "", ...wrap(c.summary, columns()), "", formatFlags(flagsOf(c), columns()), ...examples].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const asked = name === "help" ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
  if (asked) {
    process.stdout.write(`${commandHelp(asked)}\n`);
    return 0;
  }
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${mainHelp()}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-V") {
    process.stdout.write(`${LIBRARY}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) throw new UserError(`unknown command '${name.slice(0, 64)}'${didYouMean(name.slice(0, 64), COMMANDS.map((c) => c.name)) || ` (commands: ${COMMANDS.map((c) => c.name).join(", ")})`}`);
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(`${commandHelp(command)}\n`);
    return 0;
  }
  const parsed = parseArgs(rest, flagsOf(command), command.name, command.maxPositionals);
  setMemoryLimit((parsed.flags["max-memory"] as number) * 2 ** 20);
  // The command's own flags, typed; the methods' options go to the method as given.
  const own = new Set(command.flags.map((f) => f.name));
  const split = (mine: boolean) => Object.fromEntries(Object.entries(parsed.flags).filter(([k]) => k !== "max-memory" && own.has(k) === mine));
  await command.run(split(true) as Parameters<Command["run"]>[0], parsed.positionals, split(false));
  return 0;
}

/** Longest error line: a message quoting a huge input says how long it was instead of printing it. */
const MAX_MESSAGE = 400;

/**
 * One line on stderr; with --json, also one JSON object on stdout (`error`, `exit_code`), so a script
 * reading stdout sees the failure in the format it asked for.
 */
export function reportFailure(e: unknown, argv: readonly string[] = []): number {
  const line = (e instanceof Error ? e.message : String(e)).split("\n")[0]!;
  const message = line.length > MAX_MESSAGE ? `${line.slice(0, MAX_MESSAGE)}... (${line.length} characters in all)` : line;
  const code = e instanceof UserError ? 2 : 70;
  if (argv.includes("--json")) process.stdout.write(`${JSON.stringify({ error: message, exit_code: code, ...(code === 70 ? { internal: true } : {}) })}\n`);
  if (e instanceof UserError) {
    process.stderr.write(`mcnc: error: ${message}\n`);
    return 2;
  }
  process.stderr.write(`mcnc: internal error: ${message} (set MCNC_DEBUG=1 for details)\n`);
  if (process.env.MCNC_DEBUG) process.stderr.write(`${(e as Error)?.stack ?? ""}\n`);
  return 70;
}
