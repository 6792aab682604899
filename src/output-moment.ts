/**
 * The leading eigenvectors of a layer's output moment W^T H W (H the input moment; the identity for a
 * plain SVD), computed on the matrix's small side, so nothing is cubic in a matrix's larger side: the
 * low-rank compressors (svd, rom, fwsvd) and the low-rank corrections of quantised or pruned weights.
 */
import { cholesky, gram, matmul, symmetricEigen, transpose } from "./linalg.js";

/**
 * A [cols, cols] output moment, given as itself or as a factor A [m, cols] with moment A^T A. A factor
 * wider than it is tall is decomposed on its small side (A A^T, [m, m]): nothing here is cubic in a
 * matrix's larger side (a classifier's 6,625 outputs over 120 inputs decompose as 120 x 120).
 */
export type OutputMoment = { moment: Float64Array } | { factor: ArrayLike<number>; m: number };

/**
 * Where a matrix's small side is at least this wide and the rank at most an eighth of it, the top
 * vectors come from subspace iteration, whose cost is the rank times n^2 per step, instead of a whole
 * eigendecomposition (cubic: 164 s in JavaScript for a 2048 x 2048 svd at rank 64).
 */
const ITERATE_FROM = 512;

/** The top-r eigenvectors of the moment, [cols, r] (orthonormal columns; zero past the factor's rank). */
export function topOutputVectors(om: OutputMoment, cols: number, r: number): Float64Array {
  const small = "moment" in om ? cols : Math.min(om.m, cols);
  if (small >= ITERATE_FROM && 8 * r <= small) return iteratedTopVectors(om, cols, r);
  const V = new Float64Array(cols * r);
  if ("moment" in om || om.m >= cols) {
    const { vectors } = symmetricEigen("moment" in om ? om.moment : gram(om.factor, om.m, cols), cols);
    for (let i = 0; i < cols; i++) for (let j = 0; j < r; j++) V[i * r + j] = vectors[i * cols + j]!;
    return V;
  }
  // v_j = A^T u_j / sigma_j, with u_j, sigma_j^2 the eigenpairs of A A^T.
  const { m, factor } = om;
  const { values, vectors } = symmetricEigen(gram(transpose(factor, m, cols), cols, m), m);
  const floor = 1e-12 * Math.max(values[0]!, 0);
  for (let j = 0; j < Math.min(r, m); j++) {
    if (!(values[j]! > floor)) break;
    const sigma = Math.sqrt(values[j]!);
    for (let k = 0; k < m; k++) {
      const u = vectors[k * m + j]! / sigma;
      if (u === 0) continue;
      for (let i = 0; i < cols; i++) V[i * r + j]! += factor[k * cols + i]! * u;
    }
  }
  return V;
}

/**
 * Subspace iteration with Rayleigh-Ritz on the moment as an operator (M X, or A^T (A X) for a factor):
 * a block of k = max(2r, r + 16) vectors, from a fixed pseudo-random start, multiplied by the moment
 * and orthonormalised until the sum of the top r Ritz values settles (grows by under 1e-7 of itself in a
 * step; at most 100 steps). The rank-r approximation's error is the moment's trace less that sum, so it
 * is right where the sum is, even where close eigenvalues leave their vectors mixed.
 */
function iteratedTopVectors(om: OutputMoment, cols: number, r: number): Float64Array {
  const k = Math.min(cols, Math.max(2 * r, r + 16));
  // The block as rows [k, cols]: each vector contiguous.
  const times = (X: Float64Array): Float64Array => {
    if ("moment" in om) return matmul(X, om.moment, k, cols, cols);
    const { factor, m } = om;
    const Z = new Float64Array(k * m);
    for (let i = 0; i < k; i++) for (let j = 0; j < m; j++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += X[i * cols + c]! * factor[j * cols + c]!;
      Z[i * m + j] = s;
    }
    return matmul(Z, factor, k, m, cols);
  };
  let state = 0x2545f491;
  let X: Float64Array = Float64Array.from({ length: k * cols }, () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 31 - 1;
  });
  orthonormalRows(X, k, cols);
  let previous = 0;
  for (let step = 1; ; step++) {
    const Y = times(X);
    // Rayleigh-Ritz: the block's own moment X M X^T, and its eigenvectors carried back to the block.
    const { values, vectors } = symmetricEigen(matmul(X, transpose(Y, k, cols), k, cols, k), k);
    const captured = values.slice(0, r).reduce((s, v) => s + v, 0);
    if (captured - previous <= 1e-7 * captured || step === 100) {
      const ritz = matmul(transpose(vectors, k, k), X, k, k, cols);
      return transpose(ritz.subarray(0, r * cols), r, cols);
    }
    previous = captured;
    X = Y;
    orthonormalRows(X, k, cols);
  }
}

/** Rows of X [k, n] made orthonormal in place: Gram-Schmidt, twice, a row that vanishes left at zero. */
function orthonormalRows(X: Float64Array, k: number, n: number): void {
  const norm = (row: Float64Array) => Math.sqrt(row.reduce((s, v) => s + v * v, 0));
  for (let i = 0; i < k; i++) {
    const row = X.subarray(i * n, (i + 1) * n);
    const before = norm(row);
    for (let pass = 0; pass < 2; pass++) {
      for (let j = 0; j < i; j++) {
        const other = X.subarray(j * n, (j + 1) * n);
        let dot = 0;
        for (let c = 0; c < n; c++) dot += row[c]! * other[c]!;
        for (let c = 0; c < n; c++) row[c]! -= dot * other[c]!;
      }
    }
    const after = norm(row);
    if (after > 1e-10 * before) for (let c = 0; c < n; c++) row[c]! /= after;
    else row.fill(0);
  }
}

/** L with L L^T = H + d I, d the smallest of 0, 1e-8, 1e-7, ... times H's mean diagonal that makes it positive definite. */
export function dampedCholesky(H: Float64Array, n: number): Float64Array {
  let mean = 0;
  for (let i = 0; i < n; i++) mean += H[i * n + i]! / n;
  for (let damp = 0; ; damp = damp === 0 ? 1e-8 : damp * 10) {
    const A = Float64Array.from(H);
    for (let i = 0; i < n; i++) A[i * n + i]! += damp * (mean || 1);
    const L = cholesky(A, n);
    if (L) return L;
  }
}

/**
 * The output moment W^T H W of a [rows, cols] matrix under input moment H, as itself where cols <=
 * rows, else as the factor L^T W (H = L L^T): a wide matrix is decomposed on its input side.
 */
export function weightedOutputMoment(w: ArrayLike<number>, H: Float64Array, rows: number, cols: number): OutputMoment {
  if (cols > rows) return { factor: matmul(transpose(dampedCholesky(H, rows), rows, rows), w, rows, rows, cols), m: rows };
  return { moment: matmul(transpose(w, rows, cols), matmul(H, w, rows, rows, cols), cols, rows, cols) };
}
