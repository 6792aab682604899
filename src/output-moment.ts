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

/** The top-r eigenvectors of the moment, [cols, r] (orthonormal columns; zero past the factor's rank). */
export function topOutputVectors(om: OutputMoment, cols: number, r: number): Float64Array {
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
