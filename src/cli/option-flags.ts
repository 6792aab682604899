/** Flags from the options of a family of methods (training methods, post-training compressors). */
import { UserError } from "../errors.js";
import type { MethodOption } from "../methods/index.js";
import type { Flag } from "./args.js";

export interface OptionOwner {
  name: string;
  options: MethodOption[];
}

/** One flag per option name, saying which owners take it (and what it means for each). */
export function optionFlags(owners: readonly OptionOwner[]): Map<string, { flag: Flag; owners: string[] }> {
  const out = new Map<string, { flag: Flag; owners: string[]; helps: Map<string, string[]> }>();
  for (const owner of owners) {
    for (const o of owner.options) {
      const entry = out.get(o.name) ?? { flag: { name: o.name, type: o.type, help: o.help, group: "method options" }, owners: [] as string[], helps: new Map<string, string[]>() };
      entry.owners.push(owner.name);
      entry.helps.set(o.help, [...(entry.helps.get(o.help) ?? []), owner.name]);
      out.set(o.name, entry);
    }
  }
  // A flag several owners share says what it means (and defaults to) for each of them.
  for (const entry of out.values()) entry.flag.help = [...entry.helps].map(([help, names]) => `${help} [${names.join(", ")}]`).join("; ");
  return out;
}

/** The given flags that are `owner`'s options; a flag of another owner is refused by name. */
export function optionValues(owner: OptionOwner, owners: readonly OptionOwner[], given: Record<string, unknown>): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  const own = new Set(owner.options.map((o) => o.name));
  for (const [name, { owners: takers }] of optionFlags(owners)) {
    if (!(name in given)) continue;
    if (!own.has(name)) throw new UserError(`--${name} does not apply to --method ${owner.name} (it is for ${takers.join(", ")})`);
    values[name] = given[name];
  }
  return values;
}
