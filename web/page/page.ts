/**
 * The page of `npm run web`: a .mcnc file (bundled or dropped) is decoded and rebuilt in the browser,
 * its size shown beside the float32 model's, and then used: an image classifier on a drawing and on
 * test images it never saw, a GPT generating text (with an adapter dropped on it, or without). It
 * imports what any web page would: mcnc/browser.
 */
import { tree } from "@jax-js/jax";
import { checkBase, decodeModelFile, generate, gptDecoder, initEngine, timedRebuild, toDevice, type HostParams, type LoadedModel } from "mcnc/browser";
import { drawChart } from "./chart.js";
import { classify, classNames, imageModel, type Current } from "./classify.js";
import { $, number, status } from "./dom.js";
import { clearPad, setUpDrawing } from "./drawing.js";

let current: Current | undefined;
/** The last model loaded that is not an adapter: what a dropped adapter is rebuilt on. */
let base: { name: string; weights: HostParams; bytes: number } | undefined;

/** The sizes table; `onBase`: the base file an adapter needs beside it. */
function showSizes(loaded: LoadedModel, fileBytes: number, ms: number, onBase?: { name: string; bytes: number }): void {
  const params = loaded.model.specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  const dense = 4 * params;
  const ratio = dense / fileBytes;
  const rows: Array<[string, string, number | undefined]> = [
    ["this file", `${number(fileBytes)} bytes`, fileBytes],
    ["the same network in float32", `${number(dense)} bytes`, dense],
    [ratio >= 1 ? "smaller by" : "larger by", `${(ratio >= 1 ? ratio : 1 / ratio).toFixed(1)}x`, undefined],
    ...(onBase ? ([["an adapter: it needs its base beside it", `${onBase.name}, ${number(onBase.bytes)} bytes`, onBase.bytes]] as Array<[string, string, number]>) : []),
    ["weights rebuilt", `${number(params)} (${loaded.model.name}, method ${loaded.method.name})`, undefined],
    ["rebuild time here", `${ms.toFixed(0)} ms (generator regenerated from the seed, programs compiled)`, undefined],
  ];
  const table = $<HTMLTableElement>("sizes");
  table.innerHTML = "";
  for (const [label, value, bytes] of rows) {
    const tr = table.insertRow();
    tr.insertCell().textContent = label;
    const v = tr.insertCell();
    v.className = "n";
    v.textContent = value;
    const bar = tr.insertCell();
    // Bars on a linear scale: a file 90x smaller is drawn 90x shorter (2 px at least, to be seen).
    if (bytes !== undefined) bar.innerHTML = `<div class="bar${bytes === dense ? " dense" : ""}" style="width:${Math.max(2, (300 * bytes) / Math.max(dense, bytes))}px"></div>`;
  }
  table.classList.remove("hidden");
}

/** An error about file `name`, named once (the readers' messages start with the name already). */
const named = (name: string, e: unknown) => {
  const message = (e as Error).message;
  return message.startsWith(`${name}:`) ? message : `${name}: ${message}`;
};

/** Rebuilds and shows a model; false when it was refused (the status says why). */
async function load(bytes: Uint8Array, name: string): Promise<boolean> {
  status(`rebuilding ${name}…`, "loading");
  // The previous model's panels and sizes go: an error must not sit above another model's numbers.
  for (const id of ["vision", "language", "sizes"]) $(id).classList.add("hidden");
  if (current) tree.dispose(current.params);
  current = undefined;
  let loaded: LoadedModel;
  try {
    loaded = decodeModelFile(bytes, name);
  } catch (e) {
    status(named(name, e), "error");
    return false;
  }
  // An adapter is rebuilt on the model loaded before it, if that is the base it was trained on.
  let onBase: HostParams | undefined;
  if (loaded.file.adapter) {
    if (!base) return status(`${name} is an adapter: load its base model first, then the adapter`, "error"), false;
    try {
      onBase = checkBase(loaded, base.weights, base.name);
    } catch (e) {
      return status(named(name, e), "error"), false;
    }
  }
  const started = performance.now();
  const rebuilt = await timedRebuild(loaded, 0, onBase);
  const ms = performance.now() - started;
  const baseFile = onBase ? { name: base!.name, bytes: base!.bytes } : undefined;
  if (!onBase) base = { name, weights: rebuilt.params, bytes: bytes.length };
  current = { loaded, params: toDevice(loaded.model.specs, rebuilt.params) };
  showSizes(loaded, bytes.length, ms, baseFile);
  let unused = "";
  try {
    if (loaded.model.kind === "classifier") await showVision(current);
  } catch (e) {
    unused = ` (not used here: ${(e as Error).message})`;
  }
  if (loaded.model.kind === "language") $("language").classList.remove("hidden");
  status(`${name}: rebuilt in ${ms.toFixed(0)} ms${onBase ? `, an adapter on ${base!.name} (pick the base again to switch back)` : ""}${unused}`, "ready");
  return true;
}

async function showVision(c: Current): Promise<void> {
  clearPad();
  const { classes, input } = imageModel(c.loaded);
  $("vision").classList.remove("hidden");
  const names = classNames(c.loaded, classes);
  const response = await fetch("samples.json");
  const box = $("samples");
  box.innerHTML = "";
  if (!response.ok) {
    $("sample-score").textContent = "(no test images here: the Fashion-MNIST files stay in the repository)";
    return;
  }
  const { labels, images, side } = (await response.json()) as { labels: number[]; images: number[][]; side: number };
  if (input[0] !== side || input[1] !== side) {
    $("sample-score").textContent = `(the test images are ${side}x${side}; this model reads ${input[0]}x${input[1]})`;
    return;
  }
  const probs = await classify(c, Float32Array.from(images.flat()), images.length);
  let right = 0;
  images.forEach((img, i) => {
    const guess = probs[i]!.indexOf(Math.max(...probs[i]!));
    right += guess === labels[i] ? 1 : 0;
    const fig = document.createElement("figure");
    const cv = document.createElement("canvas");
    [cv.width, cv.height] = [side, side];
    const ctx = cv.getContext("2d")!;
    const data = ctx.createImageData(side, side);
    img.forEach((p, j) => data.data.set([p, p, p, 255], 4 * j));
    ctx.putImageData(data, 0, 0);
    const caption = document.createElement("figcaption");
    caption.className = guess === labels[i] ? "ok" : "bad";
    caption.textContent = names[guess] ?? String(guess);
    caption.title = `true: ${names[labels[i]!]}`;
    fig.append(cv, caption);
    box.append(fig);
  });
  const score = $("sample-score");
  score.textContent = `${right} of ${images.length} right (green), predicted in this page`;
  score.dataset.right = String(right);
  score.dataset.total = String(images.length);
}

async function generateText(): Promise<void> {
  if (!current || current.loaded.model.kind !== "language") return;
  const out = $("gen-out");
  out.textContent = "";
  document.body.dataset.state = "generating";
  const decoder = gptDecoder(current.loaded.file.model as Parameters<typeof gptDecoder>[0], tree.ref(current.params));
  const options = { tokens: Number($<HTMLInputElement>("tokens").value), temperature: Number($<HTMLInputElement>("temperature").value), topK: 0, seed: 0 };
  const prompt = new TextEncoder().encode($<HTMLInputElement>("prompt").value);
  const text = new TextDecoder();
  const started = performance.now();
  let n = 0;
  for await (const byte of generate(decoder, prompt, options)) {
    out.textContent += text.decode(Uint8Array.of(byte), { stream: true });
    n++;
  }
  const seconds = (performance.now() - started) / 1000;
  $("gen-stats").textContent = `${n} bytes in ${seconds.toFixed(1)} s (${(n / seconds).toFixed(0)} bytes/s), sampled with seed 0`;
  document.body.dataset.state = "generated";
}

async function main(): Promise<void> {
  await initEngine();
  setUpDrawing(() => current);
  $("generate").addEventListener("click", () => void generateText());
  const list = (await (await fetch("models/index.json")).json()) as Array<{ name: string; bytes: number }>;
  const select = $<HTMLSelectElement>("models");
  for (const m of list) select.add(new Option(`${m.name} (${number(m.bytes)} bytes)`, m.name));
  const fetchModel = async (name: string) => load(new Uint8Array(await (await fetch(`models/${encodeURIComponent(name)}`)).arrayBuffer()), name);
  // Dropped files join the list, so that the list shows what is loaded and picking one again reloads it.
  const dropped = new Map<string, { name: string; bytes: Uint8Array }>();
  select.addEventListener("change", () => {
    const file = dropped.get(select.value);
    void (file ? load(file.bytes, file.name) : fetchModel(select.value));
  });
  const fromFile = async (file: File) => {
    const bytes = new Uint8Array(await file.arrayBuffer());
    if (!(await load(bytes, file.name))) return;
    const key = `dropped:${file.name}`;
    if (!dropped.has(key)) select.add(new Option(`${file.name} (dropped, ${number(bytes.length)} bytes)`, key));
    dropped.set(key, { name: file.name, bytes });
    select.value = key;
  };
  $<HTMLInputElement>("file").addEventListener("change", (e) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (f) void fromFile(f);
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => (e.preventDefault(), drop.classList.add("over")));
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const f = e.dataTransfer?.files[0];
    if (f) void fromFile(f);
  });
  void drawChart();
  if (list[0]) await fetchModel(list[0].name);
}

main().catch((e: unknown) => status(`error: ${(e as Error).message}`, "error"));
