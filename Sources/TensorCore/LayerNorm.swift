/// out (N,C) = (inp − mean) · rstd · weight + bias per row; saves mean (N) and rstd (N) for backward.
///
/// Uses ε = 1e-5 as GPT-2 does; the variance is the biased (population) one.
public func layerNormForward(
    out: UnsafeMutablePointer<Float>,
    mean: UnsafeMutablePointer<Float>,
    rstd: UnsafeMutablePointer<Float>,
    inp: UnsafePointer<Float>,
    weight: UnsafePointer<Float>,
    bias: UnsafePointer<Float>,
    rows n: Int, channels c: Int,
    parallelism: Parallelism
) {
    parallelism.run(n, LayerNormRows(out: out, mean: mean, rstd: rstd, inp: inp, weight: weight, bias: bias, c: c))
}

struct LayerNormRows: ParallelWork {
    let out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>
    let inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>
    let c: Int

    func run(_ rows: Range<Int>) {
        let eps: Float = 1e-5
        for row in rows {
            let x = inp + row &* c
            let m = sum(x, count: c) / Float(c)
            var acc = FloatVector(repeating: 0)
            let mv = FloatVector(repeating: m)
            var i = 0
            while i &+ 16 <= c {
                let d = loadVector(x + i) - mv
                acc = acc.addingProduct(d, d)
                i &+= 16
            }
            var tail: Float = 0
            while i < c {
                let d = x[i] - m
                tail += d * d
                i &+= 1
            }
            let variance = (acc.sum() + tail) / Float(c)
            let s = 1 / (variance + eps).squareRoot()
            let sv = FloatVector(repeating: s)
            let y = out + row &* c
            i = 0
            while i &+ 16 <= c {
                let norm = (loadVector(x + i) - mv) * sv
                storeVector(loadVector(bias + i).addingProduct(norm, loadVector(weight + i)), y + i)
                i &+= 16
            }
            while i < c {
                y[i] = (x[i] - m) * s * weight[i] + bias[i]
                i &+= 1
            }
            mean[row] = m
            rstd[row] = s
        }
    }
}

/// Backward of `layerNormForward`; accumulates into `dinp` (N,C), `dweight` (C) and `dbias` (C).
public func layerNormBackward(
    dinp: UnsafeMutablePointer<Float>,
    dweight: UnsafeMutablePointer<Float>,
    dbias: UnsafeMutablePointer<Float>,
    dout: UnsafePointer<Float>,
    inp: UnsafePointer<Float>,
    weight: UnsafePointer<Float>,
    mean: UnsafePointer<Float>,
    rstd: UnsafePointer<Float>,
    rows n: Int, channels c: Int,
    parallelism: Parallelism
) {
    // Input gradient: rows are independent.
    parallelism.run(n, LayerNormBackwardRows(dinp: dinp, dout: dout, inp: inp, weight: weight, mean: mean, rstd: rstd, c: c))
    // Parameter gradients: threads own channel ranges and walk rows in order (deterministic).
    parallelism.run(c, grain: 64, alignment: 16,
                    LayerNormParameterGradients(dweight: dweight, dbias: dbias, dout: dout, inp: inp, mean: mean, rstd: rstd, n: n, c: c))
}

struct LayerNormBackwardRows: ParallelWork {
    let dinp: UnsafeMutablePointer<Float>
    let dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>
    let mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>
    let c: Int

    func run(_ rows: Range<Int>) {
        for row in rows {
            let x = inp + row &* c
            let dy = dout + row &* c
            let dx = dinp + row &* c
            let m = mean[row], s = rstd[row]
            let mv = FloatVector(repeating: m), sv = FloatVector(repeating: s)
            var accMean = FloatVector(repeating: 0), accNorm = FloatVector(repeating: 0)
            var tailMean: Float = 0, tailNorm: Float = 0
            var i = 0
            while i &+ 16 <= c {
                let norm = (loadVector(x + i) - mv) * sv
                let dnorm = loadVector(weight + i) * loadVector(dy + i)
                accMean += dnorm
                accNorm = accNorm.addingProduct(dnorm, norm)
                i &+= 16
            }
            let vecEnd = i
            while i < c {
                let norm = (x[i] - m) * s
                let dnorm = weight[i] * dy[i]
                tailMean += dnorm
                tailNorm += dnorm * norm
                i &+= 1
            }
            let dMean = (accMean.sum() + tailMean) / Float(c)
            let dNormMean = (accNorm.sum() + tailNorm) / Float(c)
            let dmv = FloatVector(repeating: dMean), dnv = FloatVector(repeating: dNormMean)
            i = 0
            while i < vecEnd {
                let norm = (loadVector(x + i) - mv) * sv
                let dnorm = loadVector(weight + i) * loadVector(dy + i)
                let g = (dnorm - dmv - norm * dnv) * sv
                storeVector(loadVector(dx + i) + g, dx + i)
                i &+= 16
            }
            while i < c {
                let norm = (x[i] - m) * s
                dx[i] += (weight[i] * dy[i] - dMean - norm * dNormMean) * s
                i &+= 1
            }
        }
    }
}

struct LayerNormParameterGradients: ParallelWork {
    let dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>
    let dout: UnsafePointer<Float>, inp: UnsafePointer<Float>
    let mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>
    let n: Int, c: Int

    func run(_ range: Range<Int>) {
        var j = range.lowerBound
        while j < range.upperBound {
            let width = min(16, range.upperBound &- j)
            var dw = FloatVector(repeating: 0), db = FloatVector(repeating: 0)
            for row in 0..<n {
                let mv = FloatVector(repeating: mean[row]), sv = FloatVector(repeating: rstd[row])
                let x: FloatVector, dy: FloatVector
                if width == 16 {
                    x = loadVector(inp + (row &* c &+ j)); dy = loadVector(dout + (row &* c &+ j))
                } else {
                    x = loadPartial(inp + (row &* c &+ j), count: width)
                    dy = loadPartial(dout + (row &* c &+ j), count: width)
                }
                dw = dw.addingProduct((x - mv) * sv, dy)
                db += dy
            }
            storePartial(loadPartial(dweight + j, count: width) + dw, dweight + j, count: width)
            storePartial(loadPartial(dbias + j, count: width) + db, dbias + j, count: width)
            j &+= width
        }
    }
}
