/** Declarative flags: each command lists its flags once, and parsing, errors and --help follow. */
import { UserError } from "../errors.js";

export type FlagType = "int" | "float" | "bool" | "string" | "int-list";

/**
 * A flag, declared once: parsing, bounds, the default and --help all follow from it. Commands list theirs
 * `as const`, so that FlagValues types what `run` receives.
 */
export interface Flag {
  name: string;
  type: FlagType;
  help: string;
  /** Its value when not given; --help prints it. */
  default?: number | boolean | string | readonly number[];
  /**
   * --help's words for a default that is no single value (it depends on the model, the data or other
   * flags): the value is then absent when the flag is not given, and the command decides.
   */
  defaultText?: string;
  choices?: readonly string[];
  /** An int's or float's bounds, checked when parsed. */
  min?: number;
  max?: number;
  /** Refused when missing, naming what it is. */
  required?: boolean;
  /** The heading it is listed under in --help (none: the command's own flags, listed first). */
  group?: string;
}

type ValueOf<F extends Flag> = F["type"] extends "int" | "float"
  ? number
  : F["type"] extends "bool"
    ? boolean
    : F["type"] extends "int-list"
      ? number[]
      : F extends { choices: readonly (infer C extends string)[] }
        ? C
        : string;

/** What a list of flags parses to: a flag with a default, or required, is always there; others may be absent. */
export type FlagValues<Fs extends readonly Flag[]> = {
  [F in Fs[number] as F["name"]]: F extends { default: unknown } | { required: true } ? ValueOf<F> : ValueOf<F> | undefined;
};

export interface Parsed {
  /** Every flag given, and every other flag that has a default. */
  flags: Record<string, unknown>;
  positionals: string[];
}

/** Edit distance, stopping early above `max` (names are short). */
function distance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/** " (did you mean --x?)" for the nearest of `candidates` within two edits (or one that starts the same), else "". */
export function didYouMean(given: string, candidates: readonly string[], prefix = ""): string {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = c.startsWith(given) && given.length >= 3 ? 1 : distance(given, c, 2);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best === undefined ? "" : ` (did you mean ${prefix}${best}?)`;
}

function bounded(flag: Flag, v: number): number {
  const { min = -Infinity, max = Infinity } = flag;
  if (v < min || v > max) throw new UserError(`--${flag.name} must be ${max === Infinity ? `at least ${min}` : `from ${min} to ${max}`}, got ${v}`);
  return v;
}

function convert(flag: Flag, raw: string): unknown {
  const fail = (what: string) => new UserError(`--${flag.name} expects ${what}, got '${raw}'`);
  switch (flag.type) {
    case "int": {
      if (!/^-?\d+$/.test(raw)) throw fail("an integer");
      const v = Number(raw);
      if (!Number.isSafeInteger(v)) throw fail("an integer");
      return bounded(flag, v);
    }
    case "float": {
      // Decimal notation only: Number() would also take "0x10", " 5" and "1_0"-free oddities.
      if (!/^-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(raw)) throw fail("a number");
      const v = Number(raw);
      if (!Number.isFinite(v)) throw fail("a number");
      return bounded(flag, v);
    }
    case "bool":
      if (raw === "true" || raw === "1") return true;
      if (raw === "false" || raw === "0") return false;
      throw fail("true or false");
    case "int-list": {
      if (raw === "" || raw === "none") return [];
      const parts = raw.split(",");
      if (parts.some((p) => !/^\d+$/.test(p.trim()))) throw fail("comma-separated integers");
      return parts.map(Number);
    }
    case "string":
      if (flag.choices && !flag.choices.includes(raw)) throw fail(`one of ${flag.choices.join(", ")}${didYouMean(raw.slice(0, 64), flag.choices)}`);
      return raw;
  }
}

export function parseArgs(argv: readonly string[], flags: readonly Flag[], command: string, maxPositionals: number): Parsed {
  const byName = new Map(flags.map((f) => [f.name, f]));
  const out: Parsed = { flags: {}, positionals: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--") || arg === "--") {
      if (arg === "--") {
        out.positionals.push(...argv.slice(i + 1));
        break;
      }
      if (arg.startsWith("-") && arg.length > 1) throw new UserError(`unknown option '${arg}' for 'mcnc ${command}' (see mcnc ${command} --help)`);
      out.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const flag = byName.get(name);
    if (!flag) {
      const hint = didYouMean(name.slice(0, 64), [...byName.keys()], "--");
      throw new UserError(`unknown flag --${name.slice(0, 64)} for 'mcnc ${command}'${hint || ` (see mcnc ${command} --help)`}`);
    }
    if (name in out.flags) throw new UserError(`--${name} given twice`);
    let raw: string;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else if (flag.type === "bool") raw = "true";
    else {
      if (i + 1 >= argv.length) throw new UserError(`--${name} needs a value`);
      raw = argv[++i]!;
    }
    out.flags[name] = convert(flag, raw);
  }
  if (out.positionals.length > maxPositionals) {
    throw new UserError(`unexpected argument '${out.positionals[maxPositionals]}' for 'mcnc ${command}'`);
  }
  for (const f of flags) {
    if (f.name in out.flags) continue;
    if (f.required) throw new UserError(`mcnc ${command} needs --${f.name}: ${f.help}`);
    if (f.default !== undefined) out.flags[f.name] = Array.isArray(f.default) ? [...f.default] : f.default;
  }
  return out;
}

/**
 * Flags by group, each with its help wrapped to `columns`: a flag whose name and values are long gets
 * its help on the lines below it.
 */
export function formatFlags(flags: readonly Flag[], columns = 100): string {
  // Choices too many for a line are left to the flag's help, which names them.
  const values = (f: Flag) => (f.choices && f.name.length + f.choices.join("|").length + 6 <= columns ? f.choices.join("|") : f.type);
  const left = (f: Flag) => `  --${f.name}${f.type === "bool" ? "" : ` <${values(f)}>`}`;
  const width = Math.min(Math.max(...flags.map((f) => left(f).length)) + 2, 34);
  const groups = new Map<string, Flag[]>();
  for (const f of flags) groups.set(f.group ?? "", [...(groups.get(f.group ?? "") ?? []), f]);
  const out: string[] = [];
  for (const [group, list] of [...groups].sort(([a], [b]) => Number(a !== "") - Number(b !== ""))) {
    if (group) out.push("", `${group}:`);
    for (const f of list) {
      const lines = wrap(`${f.help}${defaultWords(f)}`, Math.max(columns - width, 30));
      const name = left(f);
      if (name.length + 2 > width) out.push(name, ...lines.map((l) => " ".repeat(width) + l));
      else out.push(name.padEnd(width) + lines[0], ...lines.slice(1).map((l) => " ".repeat(width) + l));
    }
  }
  return out.join("\n");
}

/** " (default X)" from the flag's value or words; switches are off unless given, which goes without saying. */
function defaultWords(f: Flag): string {
  if (f.required) return " (required)";
  const text = f.defaultText ?? (f.default === undefined || f.default === false ? undefined : Array.isArray(f.default) ? f.default.join(",") : String(f.default));
  return text === undefined ? "" : ` (default ${text})`;
}

/** Words in lines of at most `width` characters (a longer word alone on its line). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  return [...lines, line];
}
