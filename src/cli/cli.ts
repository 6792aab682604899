/**
 * mcnc's command line. A UserError (bad flag, bad file) is one line on stderr and exit 2; anything
 * else is a bug, still one line (set MCNC_DEBUG=1 for the stack) and exit 70.
 */
import { UserError } from "../errors.js";
import { LIBRARY } from "../format/model-file.js";
import { formatFlags, parseArgs } from "./args.js";
import type { Command } from "./command.js";
import { compareCommand } from "./commands/compare.js";
import { compressCommand } from "./commands/compress.js";
import { decompressCommand } from "./commands/decompress.js";
import { evalCommand } from "./commands/eval.js";
import { generateCommand } from "./commands/generate.js";
import { inspectCommand } from "./commands/inspect.js";
import { mergeCommand } from "./commands/merge.js";
import { trainCommand } from "./commands/train.js";

const COMMANDS: Command[] = [trainCommand, evalCommand, generateCommand, inspectCommand, decompressCommand, mergeCommand, compressCommand, compareCommand];

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    "mcnc: Manifold-Constrained Neural Compression",
    "",
    "usage: mcnc <command> [flags]",
    "",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    "",
    "mcnc <command> --help lists a command's flags.",
  ].join("\n");
}

function commandHelp(c: Command): string {
  return [`usage: ${c.usage}`, "", c.summary, "", formatFlags(c.flags())].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${mainHelp()}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-V") {
    process.stdout.write(`${LIBRARY}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) throw new UserError(`unknown command '${name}' (commands: ${COMMANDS.map((c) => c.name).join(", ")})`);
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(`${commandHelp(command)}\n`);
    return 0;
  }
  const parsed = parseArgs(rest, command.flags(), command.name, command.maxPositionals);
  await command.run(parsed.flags, parsed.positionals);
  return 0;
}

export function reportFailure(e: unknown): number {
  const message = (e instanceof Error ? e.message : String(e)).split("\n")[0];
  if (e instanceof UserError) {
    process.stderr.write(`mcnc: error: ${message}\n`);
    return 2;
  }
  process.stderr.write(`mcnc: internal error: ${message} (set MCNC_DEBUG=1 for details)\n`);
  if (process.env.MCNC_DEBUG) process.stderr.write(`${(e as Error)?.stack ?? ""}\n`);
  return 70;
}
