import Basics
import TensorCore

/// One named tensor inside a flat parameter slab.
public struct ParameterTensor: Sendable, Codable, Hashable {
    /// Hugging Face style name without the `transformer.` prefix, e.g. `h.0.attn.c_attn.weight`.
    public let name: String
    /// Shape, outermost first. Matrices are (out, in), like a `Linear` layer.
    public let shape: [Int]
    /// Offset of the first element in the slab, in elements.
    public let offset: Int
    /// Whether AdamW applies weight decay (matrices and the token embedding only).
    public let decayed: Bool

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// Elements `offset..<offset+count` of the slab.
    public var range: Range<Int> { offset..<(offset + count) }
}

/// Names, shapes and offsets of every parameter tensor of a GPT inside one flat slab.
///
/// Order: wte, wpe, then per block ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj,
/// then ln_f. Blocks are contiguous so a pipeline stage owns one range of the slab.
public struct ParameterLayout: Sendable, Hashable {
    /// Tensors in slab order.
    public let tensors: [ParameterTensor]
    /// Total number of elements.
    public let count: Int

    /// The layout of a GPT with the given shape.
    public init(config: GPTConfig) {
        var tensors: [ParameterTensor] = []
        var offset = 0
        func add(_ name: String, _ shape: [Int], decayed: Bool) {
            let t = ParameterTensor(name: name, shape: shape, offset: offset, decayed: decayed)
            tensors.append(t)
            offset += t.count
        }
        let c = config.channels
        add("wte.weight", [config.vocabSize, c], decayed: true)
        add("wpe.weight", [config.contextLength, c], decayed: false)
        for l in 0..<config.layers {
            let p = "h.\(l)."
            add(p + "ln_1.weight", [c], decayed: false)
            add(p + "ln_1.bias", [c], decayed: false)
            add(p + "attn.c_attn.weight", [3 * c, c], decayed: true)
            add(p + "attn.c_attn.bias", [3 * c], decayed: false)
            add(p + "attn.c_proj.weight", [c, c], decayed: true)
            add(p + "attn.c_proj.bias", [c], decayed: false)
            add(p + "ln_2.weight", [c], decayed: false)
            add(p + "ln_2.bias", [c], decayed: false)
            add(p + "mlp.c_fc.weight", [4 * c, c], decayed: true)
            add(p + "mlp.c_fc.bias", [4 * c], decayed: false)
            add(p + "mlp.c_proj.weight", [c, 4 * c], decayed: true)
            add(p + "mlp.c_proj.bias", [c], decayed: false)
        }
        add("ln_f.weight", [c], decayed: false)
        add("ln_f.bias", [c], decayed: false)
        self.tensors = tensors
        self.count = offset
    }

    /// The tensor with this name, if any.
    public func tensor(named name: String) -> ParameterTensor? {
        tensors.first { $0.name == name }
    }

    /// FNV-1a 64-bit hash of every name and shape in order: peers and checkpoints compare it to
    /// refuse a model of another shape.
    public var hash: UInt64 {
        var h = FNV1a()
        for t in tensors { h.add("\(t.name):\(t.shape.map(String.init).joined(separator: "x"));") }
        return h.value
    }

    /// Maximal runs of adjacent tensors with the same decay setting, for the optimizer.
    public var decayRuns: [(range: Range<Int>, decayed: Bool)] {
        var runs: [(range: Range<Int>, decayed: Bool)] = []
        for t in tensors {
            if let last = runs.last, last.decayed == t.decayed, last.range.upperBound == t.offset {
                runs[runs.count - 1].range = last.range.lowerBound..<t.range.upperBound
            } else {
                runs.append((t.range, t.decayed))
            }
        }
        return runs
    }
}
