/// Shape of a GPT-2 style model.
public struct GPTConfig: Sendable, Codable, Hashable {
    /// Number of token ids (V).
    public var vocabSize: Int
    /// Longest sequence the position embedding covers (maxT).
    public var contextLength: Int
    /// Number of transformer blocks (L).
    public var layers: Int
    /// Number of attention heads (NH); must divide `channels`.
    public var heads: Int
    /// Width of the residual stream (C).
    public var channels: Int

    public init(vocabSize: Int, contextLength: Int, layers: Int, heads: Int, channels: Int) {
        self.vocabSize = vocabSize
        self.contextLength = contextLength
        self.layers = layers
        self.heads = heads
        self.channels = channels
    }

    /// A small model for tests and quick runs: 2 layers, 64 channels, byte vocabulary.
    public static let tiny = GPTConfig(vocabSize: 256, contextLength: 64, layers: 2, heads: 4, channels: 64)

    /// GPT-2 small (124M): 12 layers, 768 channels, 12 heads, GPT-2's vocabulary, 1024 positions.
    public static let gpt2Small = GPTConfig(vocabSize: 50257, contextLength: 1024, layers: 12, heads: 12, channels: 768)

    /// Named presets, for configs and flags.
    public static let presets: [String: GPTConfig] = ["tiny": .tiny, "gpt2Small": .gpt2Small]

    /// Checks every field; throws `ModelError.invalidConfig` naming the first bad one.
    public func validate() throws {
        let positive: [(String, Int)] = [
            ("vocabSize", vocabSize), ("contextLength", contextLength), ("layers", layers),
            ("heads", heads), ("channels", channels),
        ]
        for (name, value) in positive where value <= 0 {
            throw ModelError.invalidConfig(field: name, reason: "must be positive, got \(value)")
        }
        if channels % heads != 0 {
            throw ModelError.invalidConfig(
                field: "heads", reason: "(\(heads)) must divide channels (\(channels)); try \(suggestedHeads())")
        }
        if vocabSize > Int(Int32.max) {
            throw ModelError.invalidConfig(field: "vocabSize", reason: "must fit in 32 bits, got \(vocabSize)")
        }
    }

    private func suggestedHeads() -> String {
        let divisors = (1...min(channels, 64)).filter { channels % $0 == 0 }
        let nearest = divisors.min { abs($0 - heads) < abs($1 - heads) } ?? 1
        return "\(nearest)"
    }

    /// Parameters that enter matrix products: all but position embeddings (the `N` of 6N FLOPs).
    public var matmulParameterCount: Int {
        ParameterLayout(config: self).count - contextLength * channels
    }

    /// Training FLOPs per token, forward and backward: 6N + 12·L·C·T (PaLM appendix B).
    public func trainingFLOPsPerToken(sequenceLength t: Int) -> Double {
        6 * Double(matmulParameterCount) + 12 * Double(layers * channels * t)
    }
}
