import Foundation

/// Naive double-precision versions of the engine's kernels, written for clarity, for tests only.
public enum Reference {
    /// out (N,OC) = inp (N,C) · w(OC,C)ᵀ + bias.
    public static func matmul(_ inp: [Double], _ w: [Double], _ bias: [Double]?, n: Int, c: Int, oc: Int) -> [Double] {
        var out = [Double](repeating: 0, count: n * oc)
        for i in 0..<n {
            for o in 0..<oc {
                var s = bias?[o] ?? 0
                for k in 0..<c { s += inp[i * c + k] * w[o * c + k] }
                out[i * oc + o] = s
            }
        }
        return out
    }

    /// LayerNorm over rows of (N,C) with ε = 1e-5.
    public static func layerNorm(_ x: [Double], _ w: [Double], _ b: [Double], n: Int, c: Int) -> [Double] {
        var out = [Double](repeating: 0, count: n * c)
        for i in 0..<n {
            let row = x[(i * c)..<((i + 1) * c)]
            let mean = row.reduce(0, +) / Double(c)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(c)
            let rstd = 1 / (variance + 1e-5).squareRoot()
            for k in 0..<c { out[i * c + k] = (x[i * c + k] - mean) * rstd * w[k] + b[k] }
        }
        return out
    }

    /// GPT-2's tanh GELU.
    public static func gelu(_ x: [Double]) -> [Double] {
        x.map { 0.5 * $0 * (1 + tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) }
    }

    /// Causal attention from fused qkv (B,T,3C) to out (B,T,C).
    public static func attention(_ qkv: [Double], b: Int, t: Int, c: Int, nh: Int) -> [Double] {
        let hs = c / nh
        var out = [Double](repeating: 0, count: b * t * c)
        for bi in 0..<b {
            for h in 0..<nh {
                for i in 0..<t {
                    var scores = [Double](repeating: 0, count: i + 1)
                    for j in 0...i {
                        var s = 0.0
                        for d in 0..<hs {
                            s += qkv[(bi * t + i) * 3 * c + h * hs + d] * qkv[(bi * t + j) * 3 * c + c + h * hs + d]
                        }
                        scores[j] = s / Double(hs).squareRoot()
                    }
                    let m = scores.max()!
                    let e = scores.map { exp($0 - m) }
                    let z = e.reduce(0, +)
                    for d in 0..<hs {
                        var s = 0.0
                        for j in 0...i { s += e[j] / z * qkv[(bi * t + j) * 3 * c + 2 * c + h * hs + d] }
                        out[(bi * t + i) * c + h * hs + d] = s
                    }
                }
            }
        }
        return out
    }

    /// Per-row softmax cross-entropy losses of logits (N,V).
    public static func crossEntropy(_ logits: [Double], targets: [Int32], n: Int, v: Int) -> [Double] {
        (0..<n).map { i in
            let row = logits[(i * v)..<((i + 1) * v)]
            let m = row.max()!
            let lse = log(row.map { exp($0 - m) }.reduce(0, +)) + m
            return lse - logits[i * v + Int(targets[i])]
        }
    }

    /// out (B·T,C) = wte[token] + wpe[position].
    public static func encoder(_ tokens: [Int32], wte: [Double], wpe: [Double], b: Int, t: Int, c: Int) -> [Double] {
        var out = [Double](repeating: 0, count: b * t * c)
        for r in 0..<(b * t) {
            for k in 0..<c { out[r * c + k] = wte[Int(tokens[r]) * c + k] + wpe[(r % t) * c + k] }
        }
        return out
    }
}
