/// Muon's orthogonalisation: a few quintic Newton–Schulz iterations that take a matrix G = U·S·Vᵀ
/// to roughly U·Vᵀ (every singular value pushed into about 0.7…1.2) with matrix products only.
///
/// X ← G / ‖G‖_F, then `steps` times: A = X·Xᵀ, B = b·A + c·A², X ← a·X + B·X, with the
/// coefficients of Keller Jordan's Muon (a, b, c) = (3.4445, −4.7750, 2.0315), chosen to grow
/// small singular values fast rather than to converge exactly. A tall matrix (rows > cols) uses
/// the equivalent right-hand form (A = Xᵀ·X, X ← a·X + X·B), so the Gram matrix is always the
/// smaller side and nothing is transposed.
public struct NewtonSchulz {
    public static let a: Float = 3.4445, b: Float = -4.7750, c: Float = 2.0315
    /// Guards the normalisation of an all-zero matrix (which stays zero).
    public static let epsilon: Float = 1e-7

    public let rows: Int
    public let cols: Int
    public let steps: Int
    private var side: Int { min(rows, cols) }

    public init(rows: Int, cols: Int, steps: Int = 5) {
        precondition(rows > 0 && cols > 0 && steps >= 0, "[NewtonSchulz] \(rows)×\(cols), \(steps) steps")
        self.rows = rows
        self.cols = cols
        self.steps = steps
    }

    /// Floats of scratch `orthogonalize` needs: two Gram-sized matrices and one of the input's size.
    public var scratchCount: Int { 2 * side * side + rows * cols }

    /// Replaces the row-major `rows`×`cols` matrix at `x` by its orthogonalisation.
    public func orthogonalize(_ x: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, parallelism: Parallelism) {
        let n = rows * cols, s = side, wide = rows <= cols
        let norm = Float(sumOfSquares(x, count: n, parallelism: parallelism).squareRoot())
        let inverse = 1 / (norm + Self.epsilon)
        for i in 0..<n { x[i] *= inverse }
        let gram = scratch, poly = scratch + s * s, next = scratch + 2 * s * s
        for _ in 0..<steps {
            // A = X·Xᵀ (wide) or Xᵀ·X (tall): s×s.
            parallelGemm(transposeA: !wide, transposeB: wide, m: s, n: s, k: wide ? cols : rows, alpha: 1,
                         a: x, lda: cols, b: x, ldb: cols, beta: 0, c: gram, ldc: s, parallelism: parallelism)
            // B = c·A·A + b·A.
            parallelGemm(transposeA: false, transposeB: false, m: s, n: s, k: s, alpha: Self.c,
                         a: gram, lda: s, b: gram, ldb: s, beta: 0, c: poly, ldc: s, parallelism: parallelism)
            for i in 0..<(s * s) { poly[i] += Self.b * gram[i] }
            // X ← a·X + B·X (wide) or a·X + X·B (tall).
            for i in 0..<n { next[i] = Self.a * x[i] }
            if wide {
                parallelGemm(transposeA: false, transposeB: false, m: rows, n: cols, k: s, alpha: 1,
                             a: poly, lda: s, b: x, ldb: cols, beta: 1, c: next, ldc: cols, parallelism: parallelism)
            } else {
                parallelGemm(transposeA: false, transposeB: false, m: rows, n: cols, k: s, alpha: 1,
                             a: x, lda: cols, b: poly, ldb: s, beta: 1, c: next, ldc: cols, parallelism: parallelism)
            }
            x.update(from: next, count: n)
        }
    }
}
