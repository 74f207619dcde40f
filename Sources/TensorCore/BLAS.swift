import CBLAS

/// Thin, row-major wrappers over OpenBLAS `sgemm`.
public enum BLAS {
    /// Sets the number of threads OpenBLAS uses for every later matrix product (process-wide).
    public static func setThreads(_ threads: Int) {
        openblas_set_num_threads(Int32(max(1, threads)))
    }

    /// Makes OpenBLAS run each call on the calling thread. The engine splits matrix products across
    /// its own `ThreadTeam` instead (`parallelGemm`), which keeps every parallel region in one pool,
    /// makes the split deterministic, and avoids the heap allocation OpenBLAS's threaded driver
    /// makes on every call.
    public static func useCallerThreadOnly() {
        setThreads(1)
    }

    /// The number of threads OpenBLAS currently uses.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// C (m,n) = alpha * op(A) * op(B) + beta * C, all row-major with leading dimensions in elements.
    ///
    /// op(A) is (m,k): A is stored (m,k) or, when `transposeA`, (k,m). Likewise op(B) is (k,n).
    @inline(__always)
    public static func gemm(
        transposeA: Bool, transposeB: Bool,
        m: Int, n: Int, k: Int,
        alpha: Float,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        cblas_sgemm(
            CblasRowMajor,
            transposeA ? CblasTrans : CblasNoTrans,
            transposeB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k),
            alpha, a, Int32(lda), b, Int32(ldb),
            beta, c, Int32(ldc)
        )
    }
}

/// `BLAS.gemm`, with the rows of C split across `parallelism`'s threads (each part a single-threaded
/// BLAS call on its own rows). Same arguments and meaning as `BLAS.gemm`.
public func parallelGemm(
    transposeA: Bool, transposeB: Bool,
    m: Int, n: Int, k: Int,
    alpha: Float,
    a: UnsafePointer<Float>, lda: Int,
    b: UnsafePointer<Float>, ldb: Int,
    beta: Float,
    c: UnsafeMutablePointer<Float>, ldc: Int,
    parallelism: Parallelism
) {
    if m == 0 || n == 0 { return }
    // Below ~1 MFLOP a second thread costs more than it saves.
    let grain = max(16, 1_000_000 / max(1, 2 * n * k))
    parallelism.run(m, grain: grain, alignment: 16, GemmRows(
        transposeA: transposeA, transposeB: transposeB, n: n, k: k, alpha: alpha,
        a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc))
}

struct GemmRows: ParallelWork {
    let transposeA: Bool, transposeB: Bool
    let n: Int, k: Int
    let alpha: Float
    let a: UnsafePointer<Float>, lda: Int
    let b: UnsafePointer<Float>, ldb: Int
    let beta: Float
    let c: UnsafeMutablePointer<Float>, ldc: Int

    func run(_ rows: Range<Int>) {
        // Row i of op(A) starts at row i of A, or at column i when A is stored transposed.
        let aStart = transposeA ? a + rows.lowerBound : a + rows.lowerBound &* lda
        BLAS.gemm(transposeA: transposeA, transposeB: transposeB, m: rows.count, n: n, k: k, alpha: alpha,
                  a: aStart, lda: lda, b: b, ldb: ldb, beta: beta, c: c + rows.lowerBound &* ldc, ldc: ldc)
    }
}
