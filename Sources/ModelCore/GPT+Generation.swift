import Foundation
import TensorCore

/// Incremental decoding of one sequence with a key/value cache: each new token costs one pass of
/// matrix-vector products plus attention over the cached positions, so the cost per token grows
/// linearly with the context, never with its square.
public final class GPTDecoder {
    public let model: GPT
    /// Positions held so far (≤ contextLength).
    public private(set) var length = 0

    private let config: GPTConfig
    private let offsets: LayerOffsets
    private let keys: [FloatSlab], values: [FloatSlab]
    private let x: FloatSlab, normed: FloatSlab, qkv: FloatSlab, attended: FloatSlab
    private let hidden: FloatSlab, activated: FloatSlab, scores: FloatSlab, scratch: FloatSlab
    private let mean: FloatSlab, rstd: FloatSlab
    /// Logits (V) for the next token after the last `append`.
    public let logits: FloatSlab

    /// A decoder over `model`'s current parameters (not copied: later training changes it).
    public init(model: GPT) {
        self.model = model
        config = model.config
        offsets = LayerOffsets(layout: model.layout, layers: config.layers)
        let c = config.channels, t = config.contextLength
        keys = (0..<config.layers).map { _ in FloatSlab(count: t * c) }
        values = (0..<config.layers).map { _ in FloatSlab(count: t * c) }
        x = FloatSlab(count: c); normed = FloatSlab(count: c); qkv = FloatSlab(count: 3 * c)
        attended = FloatSlab(count: c); hidden = FloatSlab(count: 4 * c); activated = FloatSlab(count: 4 * c)
        scratch = FloatSlab(count: c); scores = FloatSlab(count: t)
        mean = FloatSlab(count: 1); rstd = FloatSlab(count: 1)
        logits = FloatSlab(count: config.vocabSize)
    }

    /// Forgets every position.
    public func reset() { length = 0 }

    /// Feeds one token at the next position and computes the logits that follow it.
    public func append(_ token: Int32) throws {
        guard token >= 0, Int(token) < config.vocabSize else {
            throw ModelError.tokenOutOfRange(position: length, token: token, vocabSize: config.vocabSize)
        }
        guard length < config.contextLength else {
            throw ModelError.invalidConfig(field: "contextLength", reason: "is full: \(config.contextLength) positions are cached")
        }
        let c = config.channels, nh = config.heads, hs = c / nh
        let p = model.parameters.base
        let par = Parallelism.serial
        let pos = length
        addVectors(x.base, p + offsets.wte + Int(token) * c, p + offsets.wpe + pos * c, count: c)
        for l in 0..<config.layers {
            let w = offsets.layers[l]
            layerNormForward(out: normed.base, mean: mean.base, rstd: rstd.base, inp: x.base, weight: p + w.ln1Weight,
                             bias: p + w.ln1Bias, rows: 1, channels: c, parallelism: par)
            matmulForward(out: qkv.base, inp: normed.base, weight: p + w.qkvWeight, bias: p + w.qkvBias,
                          rows: 1, inChannels: c, outChannels: 3 * c, parallelism: par)
            keys[l].pointer(at: pos * c).update(from: qkv.base + c, count: c)
            values[l].pointer(at: pos * c).update(from: qkv.base + 2 * c, count: c)
            let scale = 1 / Float(hs).squareRoot()
            for h in 0..<nh {
                let q = qkv.base + h * hs
                for j in 0...pos { scores.base[j] = dotProduct(q, keys[l].pointer(at: j * c + h * hs), count: hs) * scale }
                softmaxRow(scores.base, count: pos + 1)
                let out = attended.base + h * hs
                out.update(repeating: 0, count: hs)
                for j in 0...pos {
                    let a = scores.base[j], v = values[l].pointer(at: j * c + h * hs)
                    for d in 0..<hs { out[d] += a * v[d] }
                }
            }
            matmulForward(out: scratch.base, inp: attended.base, weight: p + w.projWeight, bias: p + w.projBias,
                          rows: 1, inChannels: c, outChannels: c, parallelism: par)
            addVectors(x.base, x.base, scratch.base, count: c)
            layerNormForward(out: normed.base, mean: mean.base, rstd: rstd.base, inp: x.base, weight: p + w.ln2Weight,
                             bias: p + w.ln2Bias, rows: 1, channels: c, parallelism: par)
            matmulForward(out: hidden.base, inp: normed.base, weight: p + w.fcWeight, bias: p + w.fcBias,
                          rows: 1, inChannels: c, outChannels: 4 * c, parallelism: par)
            geluForward(out: activated.base, inp: hidden.base, count: 4 * c, parallelism: par)
            matmulForward(out: scratch.base, inp: activated.base, weight: p + w.fcProjWeight, bias: p + w.fcProjBias,
                          rows: 1, inChannels: 4 * c, outChannels: c, parallelism: par)
            addVectors(x.base, x.base, scratch.base, count: c)
        }
        layerNormForward(out: normed.base, mean: mean.base, rstd: rstd.base, inp: x.base, weight: p + offsets.lnfWeight,
                         bias: p + offsets.lnfBias, rows: 1, channels: c, parallelism: par)
        matmulForward(out: logits.base, inp: normed.base, weight: p + offsets.wte, bias: nil,
                      rows: 1, inChannels: c, outChannels: config.vocabSize, parallelism: model.parallelism)
        length += 1
    }
}

/// How to pick the next token from logits.
public struct SamplingOptions: Sendable {
    /// 0 picks the most likely token (greedy).
    public var temperature: Float = 1
    /// Keep only the k most likely tokens (0: all).
    public var topK = 0
    /// Keep the smallest set of most likely tokens whose probability reaches p (1: all).
    public var topP: Float = 1

    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
    }

    /// A token drawn from `logits` (V values) under these options.
    public func sample(_ logits: UnsafeBufferPointer<Float>, rng: inout SeededGenerator) -> Int32 {
        let v = logits.count
        if temperature <= 0 {
            var best = 0
            for i in 1..<v where logits[i] > logits[best] { best = i }
            return Int32(best)
        }
        var order = Array(0..<v)
        order.sort { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        if topK > 0 { order = Array(order.prefix(topK)) }
        let top = logits[order[0]]
        var probs = order.map { Double(expf((logits[$0] - top) / temperature)) }
        let total = probs.reduce(0, +)
        probs = probs.map { $0 / total }
        if topP < 1 {
            var acc = 0.0, keep = 0
            while keep < probs.count { acc += probs[keep]; keep += 1; if acc >= Double(topP) { break } }
            order = Array(order.prefix(keep))
            let kept = probs.prefix(keep).reduce(0, +)
            probs = probs.prefix(keep).map { $0 / kept }
        }
        var u = rng.nextUniformDouble()
        for (i, p) in probs.enumerated() {
            u -= p
            if u < 0 { return Int32(order[i]) }
        }
        return Int32(order[order.count - 1])
    }
}
