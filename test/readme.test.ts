/** The README's data examples run as written (in a scratch folder for what they write). */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { CLI } from "./cli-helpers.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The shell block of the README that holds `marker`, as its command lines (comments dropped). */
function block(marker: string): string[] {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const found = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes(marker));
  assert.ok(found, `no README block with ${marker}`);
  return found.split("\n").map((l) => l.replace(/\s+#.*$/, "").trim()).filter((l) => l !== "");
}

test("README: the data examples (tables, image folders, eval on other data) run as written", () => {
  const scratch = mkdtempSync(join(tmpdir(), "mcnc-readme-"));
  // What a command writes (NAME.mcnc, the image folder) goes to the scratch folder; data paths stay the repository's.
  const local = (arg: string) => (/^[\w-]+\.mcnc$/.test(arg) || arg === "digit-images" ? join(scratch, arg) : arg);
  for (const line of block("--dataset digits")) {
    const [program, ...args] = line.split(/\s+/);
    const argv = program === "npx" ? [CLI, ...args.slice(1)] : args;
    assert.ok(program === "npx" || program === "node", line);
    const r = spawnSync(process.execPath, argv.map(local), { cwd: ROOT, encoding: "utf8", timeout: 240_000 });
    assert.equal(r.status, 0, `${line}\n${r.stderr}`);
    const accuracy = /test accuracy\s+([\d.]+)/.exec(r.stdout)?.[1];
    if (accuracy !== undefined) assert.ok(Number(accuracy) > 0.6, `${line}: ${accuracy}`);
  }
});
