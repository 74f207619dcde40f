/// dst[i] = x[i] + y[i] for `count` elements; `dst` may alias `x` or `y`.
@inline(__always)
public func addVectors(_ dst: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
    var i = 0
    while i &+ 16 <= count {
        storeVector(loadVector(x + i) + loadVector(y + i), dst + i)
        i &+= 16
    }
    while i < count {
        dst[i] = x[i] + y[i]
        i &+= 1
    }
}

/// out (N) = a (N) + b (N): the residual connection. `out` may alias `a`.
public func residualForward(
    out: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
    count: Int, parallelism: Parallelism
) {
    parallelism.run(count, grain: 16384, alignment: 16, VectorSum(out: out, a: a, b: b))
}

struct VectorSum: ParallelWork {
    let out: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>

    func run(_ r: Range<Int>) {
        addVectors(out + r.lowerBound, a + r.lowerBound, b + r.lowerBound, count: r.count)
    }
}

/// into (N) += from (N): the backward of a residual branch, accumulating.
public func accumulate(
    into: UnsafeMutablePointer<Float>, from: UnsafePointer<Float>,
    count: Int, parallelism: Parallelism
) {
    residualForward(out: into, a: into, b: from, count: count, parallelism: parallelism)
}

/// x (N) *= factor.
public func scale(_ x: UnsafeMutablePointer<Float>, by factor: Float, count: Int, parallelism: Parallelism) {
    parallelism.run(count, grain: 16384, alignment: 16, VectorScale(x: x, factor: factor))
}

struct VectorScale: ParallelWork {
    let x: UnsafeMutablePointer<Float>
    let factor: Float

    func run(_ r: Range<Int>) {
        var i = r.lowerBound
        let f = FloatVector(repeating: factor)
        while i &+ 16 <= r.upperBound {
            storeVector(loadVector(x + i) * f, x + i)
            i &+= 16
        }
        while i < r.upperBound {
            x[i] *= factor
            i &+= 1
        }
    }
}

/// Σ x[i]² over `count` elements, in Double per block of 4096, in an order fixed by the thread count.
///
/// Allocates nothing on the heap: per-thread partials live in a temporary stack buffer.
public func sumOfSquares(_ x: UnsafePointer<Float>, count: Int, parallelism: Parallelism) -> Double {
    let block = 4096
    let blocks = (count + block - 1) / block
    if blocks == 0 { return 0 }
    let parts = min(parallelism.threads, blocks)
    return withUnsafeTemporaryAllocation(of: Double.self, capacity: parts) { partials in
        parallelism.run(parts, BlockSquares(x: x, count: count, block: block, blocks: blocks, parts: parts, partials: partials.baseAddress!))
        var total = 0.0
        for p in 0..<parts { total += partials[p] }
        return total
    }
}

struct BlockSquares: ParallelWork {
    let x: UnsafePointer<Float>
    let count: Int, block: Int, blocks: Int, parts: Int
    let partials: UnsafeMutablePointer<Double>

    func run(_ range: Range<Int>) {
        for part in range {
            var total = 0.0
            for b in (blocks * part / parts)..<(blocks * (part + 1) / parts) {
                let start = b &* block
                total += Double(dotProduct(x + start, x + start, count: min(block, count &- start)))
            }
            partials[part] = total
        }
    }
}
