private let geluScale: Float = 0.797_884_560_8 // sqrt(2/pi)
private let geluCubic: Float = 0.044_715

/// out (N) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): GPT-2's tanh GELU.
public func geluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int, parallelism: Parallelism) {
    parallelism.run(count, grain: 8192, alignment: 16, GELUForward(out: out, inp: inp))
}

/// Backward of `geluForward`: dinp (N) += GELU'(inp) · dout. With `accumulate` false, dinp is
/// overwritten instead, and may then alias `dout`.
public func geluBackward(
    dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, dout: UnsafePointer<Float>,
    count: Int, accumulate: Bool = true, parallelism: Parallelism
) {
    parallelism.run(count, grain: 8192, alignment: 16, GELUBackward(dinp: dinp, inp: inp, dout: dout, accumulate: accumulate))
}

struct GELUForward: ParallelWork {
    let out: UnsafeMutablePointer<Float>
    let inp: UnsafePointer<Float>

    func run(_ r: Range<Int>) {
        var i = r.lowerBound
        while i < r.upperBound {
            let width = min(16, r.upperBound &- i)
            let x = width == 16 ? loadVector(inp + i) : loadPartial(inp + i, count: width)
            let u = geluScale * x.addingProduct(geluCubic * x * x, x)
            let y = 0.5 * x * (1 + vectorTanh(u))
            if width == 16 { storeVector(y, out + i) } else { storePartial(y, out + i, count: width) }
            i &+= width
        }
    }
}

struct GELUBackward: ParallelWork {
    let dinp: UnsafeMutablePointer<Float>
    let inp: UnsafePointer<Float>, dout: UnsafePointer<Float>
    let accumulate: Bool

    func run(_ r: Range<Int>) {
        var i = r.lowerBound
        while i < r.upperBound {
            let width = min(16, r.upperBound &- i)
            let full = width == 16
            let x = full ? loadVector(inp + i) : loadPartial(inp + i, count: width)
            let dy = full ? loadVector(dout + i) : loadPartial(dout + i, count: width)
            let x2 = x * x
            let u = geluScale * x.addingProduct(geluCubic * x2, x)
            let th = vectorTanh(u)
            let sech2 = 1 - th * th
            let du = geluScale * (1 + 3 * geluCubic * x2)
            let local = 0.5 * (1 + th) + 0.5 * x * sech2 * du
            var g = local * dy
            if accumulate { g += full ? loadVector(dinp + i) : loadPartial(dinp + i, count: width) }
            if full { storeVector(g, dinp + i) } else { storePartial(g, dinp + i, count: width) }
            i &+= width
        }
    }
}
