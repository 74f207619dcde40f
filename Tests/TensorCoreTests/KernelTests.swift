import ModelCore
import TensorCore
import TestSupport
import XCTest

/// Each kernel against a naive double reference (forward) and against finite differences of that
/// reference (backward), on shapes that include 1, primes and sizes not divisible by 16.
final class KernelTests: XCTestCase {
    var rng = SeededGenerator(seed: 7)
    let forwardTolerance = 2e-5
    let gradientTolerance = 1e-3
    let threadCounts = [1, 2, 3]

    func testMatmul() {
        for (n, c, oc) in [(1, 1, 1), (7, 13, 5), (3, 17, 33), (20, 31, 47)] {
            let inp = randomValues(n * c, rng: &rng), w = randomValues(oc * c, rng: &rng)
            let bias = randomValues(oc, rng: &rng), dout = randomValues(n * oc, rng: &rng)
            for threads in threadCounts {
                let par = Parallelism(threads: threads)
                var out = [Float](repeating: 0, count: n * oc)
                matmulForward(out: &out, inp: inp.floats, weight: w.floats, bias: bias.floats, rows: n, inChannels: c, outChannels: oc, parallelism: par)
                XCTAssertLessThan(scaledError(out, Reference.matmul(inp.doubles, w.doubles, bias.doubles, n: n, c: c, oc: oc)), forwardTolerance)

                var dinp = [Float](repeating: 0, count: n * c), dw = [Float](repeating: 0, count: oc * c), db = [Float](repeating: 0, count: oc)
                matmulBackward(dinp: &dinp, dweight: &dw, dbias: &db, dout: dout.floats, inp: inp.floats, weight: w.floats,
                               rows: n, inChannels: c, outChannels: oc, parallelism: par)
                let f = { (i: [Double], w2: [Double], b2: [Double]) in weightedSum(Reference.matmul(i, w2, b2, n: n, c: c, oc: oc), dout.doubles) }
                XCTAssertLessThan(scaledError(dinp, finiteDifferenceGradient(at: inp.doubles) { f($0, w.doubles, bias.doubles) }), gradientTolerance, "dinp \(n)x\(c)x\(oc)")
                XCTAssertLessThan(scaledError(dw, finiteDifferenceGradient(at: w.doubles) { f(inp.doubles, $0, bias.doubles) }), gradientTolerance, "dweight")
                XCTAssertLessThan(scaledError(db, finiteDifferenceGradient(at: bias.doubles) { f(inp.doubles, w.doubles, $0) }), gradientTolerance, "dbias")
            }
        }
    }

    func testMatmulBackwardAccumulates() {
        let n = 3, c = 5, oc = 2
        let inp = randomValues(n * c, rng: &rng).floats, w = randomValues(oc * c, rng: &rng).floats, dout = randomValues(n * oc, rng: &rng).floats
        var once = [Float](repeating: 0, count: oc * c), twice = [Float](repeating: 0, count: oc * c)
        var dbOnce = [Float](repeating: 0, count: oc), dbTwice = [Float](repeating: 0, count: oc)
        matmulBackward(dinp: nil, dweight: &once, dbias: &dbOnce, dout: dout, inp: inp, weight: w, rows: n, inChannels: c, outChannels: oc, parallelism: .serial)
        for _ in 0..<2 {
            matmulBackward(dinp: nil, dweight: &twice, dbias: &dbTwice, dout: dout, inp: inp, weight: w, rows: n, inChannels: c, outChannels: oc, parallelism: .serial)
        }
        for i in 0..<once.count { XCTAssertEqual(twice[i], 2 * once[i], accuracy: 1e-5) }
        for i in 0..<oc { XCTAssertEqual(dbTwice[i], 2 * dbOnce[i], accuracy: 1e-5) }
    }

    func testLayerNorm() {
        for (n, c) in [(1, 1), (1, 2), (5, 17), (7, 13), (4, 48), (3, 67)] {
            let x = randomValues(n * c, rng: &rng), w = randomValues(c, rng: &rng), b = randomValues(c, rng: &rng)
            let dout = randomValues(n * c, rng: &rng)
            for threads in threadCounts {
                let par = Parallelism(threads: threads)
                var out = [Float](repeating: 0, count: n * c), mean = [Float](repeating: 0, count: n), rstd = [Float](repeating: 0, count: n)
                layerNormForward(out: &out, mean: &mean, rstd: &rstd, inp: x.floats, weight: w.floats, bias: b.floats, rows: n, channels: c, parallelism: par)
                XCTAssertLessThan(scaledError(out, Reference.layerNorm(x.doubles, w.doubles, b.doubles, n: n, c: c)), forwardTolerance, "\(n)x\(c)")
                var dx = [Float](repeating: 0, count: n * c), dw = [Float](repeating: 0, count: c), db = [Float](repeating: 0, count: c)
                layerNormBackward(dinp: &dx, dweight: &dw, dbias: &db, dout: dout.floats, inp: x.floats, weight: w.floats,
                                  mean: mean, rstd: rstd, rows: n, channels: c, parallelism: par)
                let f = { (x2: [Double], w2: [Double], b2: [Double]) in weightedSum(Reference.layerNorm(x2, w2, b2, n: n, c: c), dout.doubles) }
                if c > 1 { // with one channel the output is the bias whatever x is: its gradient is 0 but FD is noise
                    XCTAssertLessThan(scaledError(dx, finiteDifferenceGradient(at: x.doubles) { f($0, w.doubles, b.doubles) }), gradientTolerance, "dinp \(n)x\(c)")
                }
                XCTAssertLessThan(scaledError(dw, finiteDifferenceGradient(at: w.doubles) { f(x.doubles, $0, b.doubles) }), gradientTolerance, "dweight \(n)x\(c)")
                XCTAssertLessThan(scaledError(db, finiteDifferenceGradient(at: b.doubles) { f(x.doubles, w.doubles, $0) }), gradientTolerance, "dbias \(n)x\(c)")
            }
        }
    }

    func testGELU() {
        for count in [1, 13, 16, 17, 97, 20_011] {
            let x = randomValues(count, scale: 6, rng: &rng), dout = randomValues(count, rng: &rng)
            for threads in threadCounts {
                let par = Parallelism(threads: threads)
                var out = [Float](repeating: 0, count: count)
                geluForward(out: &out, inp: x.floats, count: count, parallelism: par)
                XCTAssertLessThan(scaledError(out, Reference.gelu(x.doubles)), forwardTolerance)
                var dx = [Float](repeating: 0.5, count: count)
                geluBackward(dinp: &dx, inp: x.floats, dout: dout.floats, count: count, parallelism: par)
                // Elementwise, so the gradient of Σ dout·gelu(x) is dout·gelu'(x) entry by entry.
                let expected = (0..<count).map { i -> Double in
                    let h = 1e-6
                    let g = (Reference.gelu([x.doubles[i] + h])[0] - Reference.gelu([x.doubles[i] - h])[0]) / (2 * h)
                    return 0.5 + g * dout.doubles[i]
                }
                XCTAssertLessThan(scaledError(dx, expected), gradientTolerance, "count \(count)")
            }
        }
    }

    func testAttention() {
        for (b, t, c, nh) in [(1, 1, 2, 1), (1, 5, 6, 3), (2, 7, 12, 2), (1, 13, 34, 2), (2, 17, 16, 4)] {
            let qkv = randomValues(b * t * 3 * c, scale: 2, rng: &rng), dout = randomValues(b * t * c, rng: &rng)
            for threads in threadCounts {
                let par = Parallelism(threads: threads)
                var out = [Float](repeating: 0, count: b * t * c), att = [Float](repeating: 0, count: b * nh * t * t)
                attentionForward(out: &out, att: &att, qkv: qkv.floats, batch: b, length: t, channels: c, heads: nh, parallelism: par)
                XCTAssertLessThan(scaledError(out, Reference.attention(qkv.doubles, b: b, t: t, c: c, nh: nh)), forwardTolerance, "\(b),\(t),\(c),\(nh)")
                var dqkv = [Float](repeating: 0, count: b * t * 3 * c)
                var scratch = [Float](repeating: 0, count: attentionBackwardScratchCount(length: t, parallelism: par))
                attentionBackward(dqkv: &dqkv, dout: dout.floats, qkv: qkv.floats, att: att, scratch: &scratch,
                                  batch: b, length: t, channels: c, heads: nh, parallelism: par)
                let numeric = finiteDifferenceGradient(at: qkv.doubles) {
                    weightedSum(Reference.attention($0, b: b, t: t, c: c, nh: nh), dout.doubles)
                }
                XCTAssertLessThan(scaledError(dqkv, numeric), gradientTolerance, "\(b),\(t),\(c),\(nh)")
            }
        }
    }

    func testCrossEntropy() {
        for (n, v) in [(1, 1), (1, 2), (5, 17), (3, 101), (2, 50257)] {
            let logits = randomValues(n * v, scale: 4, rng: &rng)
            let targets = (0..<n).map { _ in Int32(rng.next() % UInt64(v)) }
            for threads in threadCounts {
                let par = Parallelism(threads: threads)
                var probs = logits.floats, losses = [Float](repeating: 0, count: n)
                crossEntropyForward(losses: &losses, logitsToProbs: &probs, targets: targets, rows: n, vocab: v, parallelism: par)
                XCTAssertLessThan(scaledError(losses, Reference.crossEntropy(logits.doubles, targets: targets, n: n, v: v)), forwardTolerance)
                crossEntropyBackward(probsToDlogits: &probs, targets: targets, scale: 0.5, rows: n, vocab: v, parallelism: par)
                if v <= 101 {
                    let numeric = finiteDifferenceGradient(at: logits.doubles) {
                        0.5 * Reference.crossEntropy($0, targets: targets, n: n, v: v).reduce(0, +)
                    }
                    XCTAssertLessThan(scaledError(probs, numeric), gradientTolerance, "\(n)x\(v)")
                } else {
                    // Too many entries for finite differences: rows of dlogits sum to zero.
                    for r in 0..<n { XCTAssertEqual(probs[(r * v)..<((r + 1) * v)].reduce(0, +), 0, accuracy: 1e-5) }
                }
            }
        }
    }

    func testEncoder() {
        for (b, t, c, v) in [(1, 1, 1, 1), (2, 5, 17, 3), (3, 7, 33, 11)] {
            let tokens = (0..<(b * t)).map { _ in Int32(rng.next() % UInt64(v)) }
            let wte = randomValues(v * c, rng: &rng), wpe = randomValues(t * c, rng: &rng), dout = randomValues(b * t * c, rng: &rng)
            for threads in threadCounts {
                let par = Parallelism(threads: threads)
                var out = [Float](repeating: 0, count: b * t * c)
                encoderForward(out: &out, tokens: tokens, wte: wte.floats, wpe: wpe.floats, batch: b, length: t, channels: c, parallelism: par)
                XCTAssertLessThan(scaledError(out, Reference.encoder(tokens, wte: wte.doubles, wpe: wpe.doubles, b: b, t: t, c: c)), forwardTolerance)
                var dwte = [Float](repeating: 0, count: v * c), dwpe = [Float](repeating: 0, count: t * c)
                encoderBackward(dwte: &dwte, dwpe: &dwpe, dout: dout.floats, tokens: tokens, batch: b, length: t, channels: c, parallelism: par)
                let f = { (te: [Double], pe: [Double]) in weightedSum(Reference.encoder(tokens, wte: te, wpe: pe, b: b, t: t, c: c), dout.doubles) }
                XCTAssertLessThan(scaledError(dwte, finiteDifferenceGradient(at: wte.doubles) { f($0, wpe.doubles) }), gradientTolerance)
                XCTAssertLessThan(scaledError(dwpe, finiteDifferenceGradient(at: wpe.doubles) { f(wte.doubles, $0) }), gradientTolerance)
            }
        }
    }

    func testVectorExpAccuracy() {
        var worst: Float = 0
        var x: Float = -87
        while x < 88 {
            var v = FloatVector(repeating: 0)
            for i in 0..<16 { v[i] = x + Float(i) * 0.0037 }
            let e = vectorExp(v)
            for i in 0..<16 {
                let exact = Foundation.exp(Double(v[i]))
                worst = max(worst, Float(abs(Double(e[i]) - exact) / exact))
            }
            x += 0.0591
        }
        XCTAssertLessThan(worst, 5e-7)
        XCTAssertEqual(Double(vectorExp(FloatVector(repeating: -1000))[0]) / Foundation.exp(Double(Float(-87.33))), 1, accuracy: 1e-6)
        XCTAssertTrue(vectorExp(FloatVector(repeating: 1000))[0].isFinite)
    }

    func testSumOfSquaresIsDeterministicAndExact() {
        let values = randomValues(100_003, rng: &rng)
        let exact = values.doubles.reduce(0) { $0 + $1 * $1 }
        for threads in threadCounts {
            let a = sumOfSquares(values.floats, count: values.floats.count, parallelism: Parallelism(threads: threads))
            let b = sumOfSquares(values.floats, count: values.floats.count, parallelism: Parallelism(threads: threads))
            XCTAssertEqual(a, b)
            XCTAssertEqual(a, exact, accuracy: exact * 1e-6)
        }
        XCTAssertEqual(sumOfSquares(values.floats, count: 0, parallelism: .serial), 0)
    }

    func testAdamWMatchesScalarFormula() {
        let count = 37
        let p = randomValues(count, rng: &rng), g = randomValues(count, rng: &rng)
        var params = p.floats, m = [Float](repeating: 0.01, count: count), v = [Float](repeating: 0.02, count: count)
        let hyper = AdamWStep(learningRate: 0.1, beta1: 0.8, beta2: 0.9, epsilon: 1e-8, weightDecay: 0.5, step: 3, gradientScale: 0.7)
        adamWUpdate(params: &params, grads: g.floats, m: &m, v: &v, count: count, hyper: hyper, parallelism: Parallelism(threads: 2))
        for i in 0..<count {
            let gi = g.doubles[i] * 0.7
            let mi = 0.8 * 0.01 + 0.2 * gi, vi = 0.9 * 0.02 + 0.1 * gi * gi
            let mhat = mi / (1 - pow(0.8, 3)), vhat = vi / (1 - pow(0.9, 3))
            let expected = p.doubles[i] * (1 - 0.1 * 0.5) - 0.1 * mhat / (vhat.squareRoot() + 1e-8)
            XCTAssertEqual(Double(params[i]), expected, accuracy: 1e-5)
            XCTAssertEqual(Double(m[i]), mi, accuracy: 1e-6)
            XCTAssertEqual(Double(v[i]), vi, accuracy: 1e-6)
        }
    }
}
