/// out (N,OC) = inp (N,C) · weight(OC,C)ᵀ + bias (OC); `bias` may be nil. Overwrites `out`.
///
/// The weight is stored like a `Linear` layer: one row of C inputs per output channel.
public func matmulForward(
    out: UnsafeMutablePointer<Float>,
    inp: UnsafePointer<Float>,
    weight: UnsafePointer<Float>,
    bias: UnsafePointer<Float>?,
    rows n: Int, inChannels c: Int, outChannels oc: Int,
    parallelism: Parallelism
) {
    precondition(n >= 0 && c > 0 && oc > 0, "[matmul] bad shape n=\(n) c=\(c) oc=\(oc)")
    var beta: Float = 0
    if let bias {
        parallelism.run(n, BroadcastRows(out: out, row: bias, width: oc))
        beta = 1
    }
    parallelGemm(transposeA: false, transposeB: true, m: n, n: oc, k: c, alpha: 1,
                 a: inp, lda: c, b: weight, ldb: c, beta: beta, c: out, ldc: oc, parallelism: parallelism)
}

/// Backward of `matmulForward`; accumulates into `dinp` (N,C), `dweight` (OC,C) and `dbias` (OC).
///
/// `dinp` may be nil when the input needs no gradient; `dbias` is nil when there is no bias.
public func matmulBackward(
    dinp: UnsafeMutablePointer<Float>?,
    dweight: UnsafeMutablePointer<Float>,
    dbias: UnsafeMutablePointer<Float>?,
    dout: UnsafePointer<Float>,
    inp: UnsafePointer<Float>,
    weight: UnsafePointer<Float>,
    rows n: Int, inChannels c: Int, outChannels oc: Int,
    parallelism: Parallelism
) {
    if let dinp {
        parallelGemm(transposeA: false, transposeB: false, m: n, n: c, k: oc, alpha: 1,
                     a: dout, lda: oc, b: weight, ldb: c, beta: 1, c: dinp, ldc: c, parallelism: parallelism)
    }
    parallelGemm(transposeA: true, transposeB: false, m: oc, n: c, k: n, alpha: 1,
                 a: dout, lda: oc, b: inp, ldb: c, beta: 1, c: dweight, ldc: c, parallelism: parallelism)
    if let dbias {
        columnSumAccumulate(into: dbias, from: dout, rows: n, columns: oc, parallelism: parallelism)
    }
}

/// Copies one row into every row of a (rows, width) matrix.
struct BroadcastRows: ParallelWork {
    let out: UnsafeMutablePointer<Float>
    let row: UnsafePointer<Float>
    let width: Int

    func run(_ rows: Range<Int>) {
        for r in rows { (out + r &* width).update(from: row, count: width) }
    }
}

/// into[j] += Σ_rows from[row, j] for a row-major (rows, columns) matrix.
///
/// Threads own column ranges and walk the rows in order, so the sum order is fixed.
public func columnSumAccumulate(
    into: UnsafeMutablePointer<Float>,
    from: UnsafePointer<Float>,
    rows: Int, columns: Int,
    parallelism: Parallelism
) {
    parallelism.run(columns, grain: 64, alignment: 16, ColumnSums(into: into, from: from, rows: rows, columns: columns))
}

struct ColumnSums: ParallelWork {
    let into: UnsafeMutablePointer<Float>
    let from: UnsafePointer<Float>
    let rows: Int, columns: Int

    func run(_ range: Range<Int>) {
        var j = range.lowerBound
        while j < range.upperBound {
            let width = min(16, range.upperBound &- j)
            var acc = FloatVector(repeating: 0)
            if width == 16 {
                for r in 0..<rows { acc += loadVector(from + (r &* columns &+ j)) }
                storeVector(acc + loadVector(into + j), into + j)
            } else {
                for r in 0..<rows { acc += loadPartial(from + (r &* columns &+ j), count: width) }
                storePartial(acc + loadPartial(into + j, count: width), into + j, count: width)
            }
            j &+= width
        }
    }
}
