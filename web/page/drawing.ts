/** The drawing pad: white strokes on black, like the data; classified at the model's input size on each stroke's end. */
import { $ } from "./dom.js";
import { classify, classNames, imageModel, type Current } from "./classify.js";

const pad = () => $<HTMLCanvasElement>("pad");
export function clearPad(): void {
  const ctx = pad().getContext("2d")!;
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad().width, pad().height);
  $("probs").innerHTML = "";
}

async function classifyDrawing(current: Current | undefined): Promise<void> {
  if (!current || current.loaded.model.kind !== "classifier") return;
  const [h, w] = imageModel(current.loaded).input;
  const small = document.createElement("canvas");
  [small.width, small.height] = [w, h];
  const ctx = small.getContext("2d")!;
  ctx.drawImage(pad(), 0, 0, w, h);
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const pixels = Float32Array.from({ length: w * h }, (_, i) => rgba[4 * i]!);
  const [p] = await classify(current, pixels, 1);
  const names = classNames(current.loaded, p!.length);
  const top = [...p!.keys()].sort((a, b) => p![b]! - p![a]!).slice(0, 3);
  const table = $<HTMLTableElement>("probs");
  table.innerHTML = "";
  for (const k of top) {
    const tr = table.insertRow();
    tr.insertCell().textContent = names[k]!;
    const v = tr.insertCell();
    v.className = "n";
    v.textContent = `${(100 * p![k]!).toFixed(1)}%`;
    tr.insertCell().innerHTML = `<div class="bar" style="width:${Math.round(150 * p![k]!)}px"></div>`;
  }
  table.dataset.top = names[top[0]!];
}

/** `current`: the model shown when a stroke ends. */
export function setUpDrawing(current: () => Current | undefined): void {
  let drawing = false;
  const at = (e: PointerEvent) => {
    const r = pad().getBoundingClientRect();
    return [((e.clientX - r.left) * pad().width) / r.width, ((e.clientY - r.top) * pad().height) / r.height] as const;
  };
  const ctx = pad().getContext("2d")!;
  pad().addEventListener("pointerdown", (e) => {
    drawing = true;
    const [x, y] = at(e);
    ctx.beginPath();
    ctx.moveTo(x, y);
  });
  pad().addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const [x, y] = at(e);
    Object.assign(ctx, { strokeStyle: "#fff", lineWidth: 26, lineCap: "round", lineJoin: "round" });
    ctx.lineTo(x, y);
    ctx.stroke();
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    void classifyDrawing(current());
  };
  pad().addEventListener("pointerup", end);
  pad().addEventListener("pointerleave", end);
  $("clear").addEventListener("click", clearPad);
}
