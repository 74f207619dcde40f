/// Causal multi-head self-attention from a fused projection.
///
/// qkv (B,T,3C) holds, per position, the C query, C key and C value channels; head h owns channels
/// h·hs..<(h+1)·hs of each, hs = C/NH. Writes out (B,T,C) and the attention probabilities
/// att (B,NH,T,T) (zero above the diagonal), which the backward pass needs. Heads are spread over
/// the threads; each head's products are single-threaded BLAS calls.
public func attentionForward(
    out: UnsafeMutablePointer<Float>,
    att: UnsafeMutablePointer<Float>,
    qkv: UnsafePointer<Float>,
    batch b: Int, length t: Int, channels c: Int, heads nh: Int,
    parallelism: Parallelism
) {
    precondition(c % nh == 0, "[attention] channels \(c) not divisible by heads \(nh)")
    let shape = AttentionShape(length: t, channels: c, heads: nh)
    parallelism.run(b &* nh, AttentionHeads(out: out, att: att, qkv: qkv, shape: shape))
}

/// Where one head of one sequence lives in the fused qkv (B,T,3C) and output (B,T,C) buffers.
struct AttentionShape {
    let length: Int, channels: Int, heads: Int

    var headSize: Int { channels / heads }
    /// 1/√hs, the score scale.
    var scale: Float { 1 / Float(headSize).squareRoot() }
    /// Row stride of qkv.
    var qkvStride: Int { 3 &* channels }

    /// Offset of head `bh` (= b·NH + h)'s first query element in qkv; keys follow at +C, values at +2C.
    @inline(__always)
    func qkvOffset(_ bh: Int) -> Int {
        let (b, h) = bh.quotientAndRemainder(dividingBy: heads)
        return b &* length &* qkvStride &+ h &* headSize
    }

    /// Offset of head `bh`'s first element in the (B,T,C) output.
    @inline(__always)
    func outOffset(_ bh: Int) -> Int {
        let (b, h) = bh.quotientAndRemainder(dividingBy: heads)
        return b &* length &* channels &+ h &* headSize
    }
}

struct AttentionHeads: ParallelWork {
    let out: UnsafeMutablePointer<Float>
    let att: UnsafeMutablePointer<Float>
    let qkv: UnsafePointer<Float>
    let shape: AttentionShape

    func run(_ range: Range<Int>) {
        let (t, c, hs, c3) = (shape.length, shape.channels, shape.headSize, shape.qkvStride)
        for bh in range {
            let q = qkv + shape.qkvOffset(bh)
            let a = att + bh &* t &* t
            // S = s·Q·Kᵀ, then a causal softmax per row, then O = A·V.
            BLAS.gemm(transposeA: false, transposeB: true, m: t, n: t, k: hs, alpha: shape.scale,
                      a: q, lda: c3, b: q + c, ldb: c3, beta: 0, c: a, ldc: t)
            for row in 0..<t { causalSoftmaxRow(a + row &* t, valid: row &+ 1, length: t) }
            BLAS.gemm(transposeA: false, transposeB: false, m: t, n: hs, k: t, alpha: 1,
                      a: a, lda: t, b: q + 2 &* c, ldb: c3, beta: 0, c: out + shape.outOffset(bh), ldc: c)
        }
    }
}

/// In-place softmax over the first `valid` entries of a row; the rest become zero (causal mask).
@inline(__always)
func causalSoftmaxRow(_ row: UnsafeMutablePointer<Float>, valid: Int, length: Int) {
    var maxValue = -Float.greatestFiniteMagnitude
    for j in 0..<valid where row[j] > maxValue { maxValue = row[j] }
    let mv = FloatVector(repeating: maxValue)
    var acc = FloatVector(repeating: 0)
    var j = 0
    while j &+ 16 <= valid {
        let e = vectorExp(loadVector(row + j) - mv)
        storeVector(e, row + j)
        acc += e
        j &+= 16
    }
    if j < valid {
        let n = valid &- j
        let e = vectorExp(loadPartial(row + j, count: n) - mv)
        var masked = FloatVector(repeating: 0)
        for k in 0..<n { masked[k] = e[k] }
        storePartial(masked, row + j, count: n)
        acc += masked
    }
    let inv = 1 / acc.sum()
    for k in 0..<valid { row[k] *= inv }
    if valid < length { (row + valid).update(repeating: 0, count: length &- valid) }
}

/// Floats of scratch `attentionBackward` needs: one T×T block per thread.
public func attentionBackwardScratchCount(length t: Int, parallelism: Parallelism) -> Int {
    parallelism.threads * t * t
}

/// Backward of `attentionForward`; accumulates into dqkv (B,T,3C) from dout (B,T,C).
///
/// `scratch` must hold `attentionBackwardScratchCount` floats; it is overwritten.
public func attentionBackward(
    dqkv: UnsafeMutablePointer<Float>,
    dout: UnsafePointer<Float>,
    qkv: UnsafePointer<Float>,
    att: UnsafePointer<Float>,
    scratch: UnsafeMutablePointer<Float>,
    batch b: Int, length t: Int, channels c: Int, heads nh: Int,
    parallelism: Parallelism
) {
    // One part per thread, so that each part owns one scratch block.
    let parts = min(parallelism.threads, b &* nh)
    parallelism.run(parts, AttentionBackwardParts(
        dqkv: dqkv, dout: dout, qkv: qkv, att: att, scratch: scratch,
        parts: parts, totalHeads: b &* nh, shape: AttentionShape(length: t, channels: c, heads: nh)))
}

struct AttentionBackwardParts: ParallelWork {
    let dqkv: UnsafeMutablePointer<Float>
    let dout: UnsafePointer<Float>, qkv: UnsafePointer<Float>, att: UnsafePointer<Float>
    let scratch: UnsafeMutablePointer<Float>
    let parts: Int, totalHeads: Int
    let shape: AttentionShape

    func run(_ range: Range<Int>) {
        let (t, c, hs, c3) = (shape.length, shape.channels, shape.headSize, shape.qkvStride)
        let scaleFactor = shape.scale
        for part in range {
            let ds = scratch + part &* t &* t
            for bh in (totalHeads * part / parts)..<(totalHeads * (part + 1) / parts) {
                let q = qkv + shape.qkvOffset(bh)
                let k = q + c, v = q + 2 &* c
                let dq = dqkv + shape.qkvOffset(bh)
                let dk = dq + c, dv = dq + 2 &* c
                let a = att + bh &* t &* t
                let dO = dout + shape.outOffset(bh)
                // dA = dO·Vᵀ ; dV += Aᵀ·dO
                BLAS.gemm(transposeA: false, transposeB: true, m: t, n: t, k: hs, alpha: 1,
                          a: dO, lda: c, b: v, ldb: c3, beta: 0, c: ds, ldc: t)
                BLAS.gemm(transposeA: true, transposeB: false, m: t, n: hs, k: t, alpha: 1,
                          a: a, lda: t, b: dO, ldb: c, beta: 1, c: dv, ldc: c3)
                // Softmax backward in place: dS = A ⊙ (dA − Σ A⊙dA), zero above the diagonal.
                for row in 0..<t {
                    let ar = a + row &* t, dr = ds + row &* t
                    let valid = row &+ 1
                    let inner = dotProduct(ar, dr, count: valid)
                    for j in 0..<valid { dr[j] = ar[j] * (dr[j] - inner) }
                    if valid < t { (dr + valid).update(repeating: 0, count: t &- valid) }
                }
                // dQ += s·dS·K ; dK += s·dSᵀ·Q
                BLAS.gemm(transposeA: false, transposeB: false, m: t, n: hs, k: t, alpha: scaleFactor,
                          a: ds, lda: t, b: k, ldb: c3, beta: 1, c: dq, ldc: c3)
                BLAS.gemm(transposeA: true, transposeB: false, m: t, n: hs, k: t, alpha: scaleFactor,
                          a: ds, lda: t, b: q, ldb: c3, beta: 1, c: dk, ldc: c3)
            }
        }
    }
}
