/**
 * A matrix as a tensor train (a matrix product operator, as CompactifAI writes a layer): its rows and
 * columns are each factored over `sites` (rows = r_1 ... r_n, row-major, r_1 the most significant), and
 * the weight is a chain of cores G_k [D_{k-1}, r_k, c_k, D_k] (D_0 = D_n = 1) contracted over the bonds:
 * W[(i_1..i_n), (j_1..j_n)] = G_1[:, i_1, j_1, :] G_2[:, i_2, j_2, :] ... G_n[:, i_n, j_n, :]. How a size
 * is factored and how the cores are contracted is part of the file format (docs/format.md).
 */

/**
 * `size` as `sites` factors, balanced: its prime factors, largest first, each to the factor that is
 * smallest so far (the first of equals); the factors in descending order. A prime size is itself and ones.
 */
export function siteFactors(size: number, sites: number): number[] {
  const primes: number[] = [];
  let rest = size;
  for (let p = 2; p * p <= rest; p++) while (rest % p === 0) (primes.push(p), (rest /= p));
  if (rest > 1) primes.push(rest);
  const out = new Array<number>(sites).fill(1);
  for (const p of primes.sort((a, b) => b - a)) {
    const smallest = out.indexOf(Math.min(...out));
    out[smallest]! *= p;
  }
  return out.sort((a, b) => b - a);
}

export interface Train {
  rows: number[];
  cols: number[];
  /** D_0 ... D_n, with D_0 = D_n = 1. */
  bonds: number[];
}

/** The largest bond each inner cut allows: the size of the smaller side of it. */
export function maxBonds(rows: readonly number[], cols: readonly number[]): number[] {
  const sizes = rows.map((r, k) => r * cols[k]!);
  const total = sizes.reduce((a, b) => a * b, 1);
  let left = 1;
  return sizes.slice(0, -1).map((s) => ((left *= s), Math.min(left, total / left)));
}

/** The train of a [rows, cols] matrix with inner bonds `inner` (each capped at what its cut allows). */
export function trainOf(rows: number, cols: number, sites: number, inner: readonly number[]): Train {
  const [r, c] = [siteFactors(rows, sites), siteFactors(cols, sites)];
  const cap = maxBonds(r, c);
  return { rows: r, cols: c, bonds: [1, ...cap.map((m, k) => Math.min(m, inner[k]!)), 1] };
}

export const coreShape = (t: Train, k: number): number[] => [t.bonds[k]!, t.rows[k]!, t.cols[k]!, t.bonds[k + 1]!];

export function trainParams(t: Train): number {
  return t.rows.reduce((n, r, k) => n + t.bonds[k]! * r * t.cols[k]! * t.bonds[k + 1]!, 0);
}

/** Multiply-adds of one contraction, and the largest intermediate it holds (numbers). */
export function contractionCost(t: Train): { flops: number; largest: number } {
  let [flops, largest, prefix] = [0, 0, 1];
  t.rows.forEach((r, k) => {
    const width = r * t.cols[k]! * t.bonds[k + 1]!;
    flops += 2 * prefix * t.bonds[k]! * width;
    prefix *= r * t.cols[k]!;
    largest = Math.max(largest, prefix * t.bonds[k + 1]!);
  });
  return { flops, largest };
}

/**
 * Where element (i, j) of the matrix sits in the train's site-major order (i_1, j_1, i_2, j_2, ...):
 * `at[i * cols + j]`. The contraction yields that order; a transpose makes it the matrix's.
 */
export function siteOrder(t: Train): Uint32Array {
  const rows = t.rows.reduce((a, b) => a * b, 1);
  const cols = t.cols.reduce((a, b) => a * b, 1);
  const at = new Uint32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      let [ri, cj, index] = [i, j, 0];
      let [rowScale, colScale] = [rows, cols];
      for (let k = 0; k < t.rows.length; k++) {
        rowScale /= t.rows[k]!;
        colScale /= t.cols[k]!;
        const ik = Math.floor(ri / rowScale);
        const jk = Math.floor(cj / colScale);
        ri -= ik * rowScale;
        cj -= jk * colScale;
        index = (index * t.rows[k]! + ik) * t.cols[k]! + jk;
      }
      at[i * cols + j] = index;
    }
  }
  return at;
}

/** The matrix [rows, cols] (row-major) of a train's cores, contracted on the host in float64. */
export function contract(t: Train, cores: ReadonlyArray<ArrayLike<number>>): Float64Array {
  let x = Float64Array.from(cores[0]!);
  let prefix = t.rows[0]! * t.cols[0]!;
  for (let k = 1; k < t.rows.length; k++) {
    const [inner, width] = [t.bonds[k]!, t.rows[k]! * t.cols[k]! * t.bonds[k + 1]!];
    const next = new Float64Array(prefix * width);
    const core = cores[k]!;
    for (let p = 0; p < prefix; p++)
      for (let a = 0; a < inner; a++) {
        const v = x[p * inner + a]!;
        if (v !== 0) for (let w = 0; w < width; w++) next[p * width + w]! += v * core[a * width + w]!;
      }
    [x, prefix] = [next, prefix * t.rows[k]! * t.cols[k]!];
  }
  const at = siteOrder(t);
  return Float64Array.from(at, (i) => x[i]!);
}
