import CBLAS

/// Thin, row-major wrappers over OpenBLAS `sgemm`.
public enum BLAS {
    /// Sets the number of threads OpenBLAS uses for every later matrix product (process-wide).
    public static func setThreads(_ threads: Int) {
        openblas_set_num_threads(Int32(max(1, threads)))
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
