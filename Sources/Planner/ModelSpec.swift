import Foundation
import Basics

/// A dense decoder-only transformer as the planner sizes it: layers L, hidden width h, heads a
/// (and key/value heads for grouped-query attention), feed-forward width f (gated as in SwiGLU,
/// or not), sequence s, vocabulary V, and whether the LM head shares the token embedding.
public struct ModelSpec: Codable, Sendable, Equatable {
    public var name: String
    public var layers: Int
    public var hidden: Int
    public var heads: Int
    public var sequenceLength: Int
    public var vocabulary: Int
    /// Key/value heads (grouped-query attention); equal to `heads` for multi-head attention.
    public var keyValueHeads: Int
    /// Width of the feed-forward block's inner layer (4h in GPT).
    public var feedForward: Int
    /// A gated feed-forward block (SwiGLU, GeGLU: three matrices instead of two).
    public var gatedFeedForward: Bool
    /// Whether the LM head is the token embedding (GPT) or a matrix of its own (Llama).
    public var tiedEmbeddings: Bool
    /// Learned position embeddings (GPT) rather than rotary ones (Llama), and biases on the
    /// block's matrices: a few parameters, no FLOPs that matter.
    public var learnedPositions: Bool
    public var biases: Bool

    public init(name: String, layers: Int, hidden: Int, heads: Int, sequenceLength: Int = 2048, vocabulary: Int = 51200,
                keyValueHeads: Int? = nil, feedForward: Int? = nil, gatedFeedForward: Bool = false, tiedEmbeddings: Bool = true,
                learnedPositions: Bool = true, biases: Bool = true) {
        self.name = name
        self.layers = layers
        self.hidden = hidden
        self.heads = heads
        self.sequenceLength = sequenceLength
        self.vocabulary = vocabulary
        self.keyValueHeads = keyValueHeads ?? heads
        self.feedForward = feedForward ?? 4 * hidden
        self.gatedFeedForward = gatedFeedForward
        self.tiedEmbeddings = tiedEmbeddings
        self.learnedPositions = learnedPositions
        self.biases = biases
    }

    /// A Llama-style model: SwiGLU feed-forward, untied LM head, rotary positions, no biases.
    static func llama(_ name: String, layers: Int, hidden: Int, heads: Int, kv: Int, ffn: Int, vocabulary: Int, sequence: Int) -> ModelSpec {
        ModelSpec(name: name, layers: layers, hidden: hidden, heads: heads, sequenceLength: sequence, vocabulary: vocabulary,
                  keyValueHeads: kv, feedForward: ffn, gatedFeedForward: true, tiedEmbeddings: false, learnedPositions: false, biases: false)
    }

    /// GPT-3 style presets (Brown et al. 2020, Table 2.1; larger ones from Narayanan et al. 2021)
    /// and the Llama 2 / Llama 3 shapes (Touvron et al. 2023; Meta's model cards).
    public static let presets: [ModelSpec] = [
        ModelSpec(name: "gpt-125m", layers: 12, hidden: 768, heads: 12),
        ModelSpec(name: "gpt-350m", layers: 24, hidden: 1024, heads: 16),
        ModelSpec(name: "gpt-760m", layers: 24, hidden: 1536, heads: 16),
        // GPT-3 XL lists 24 heads of 128, which does not divide 2048; 16 heads of 128 do.
        ModelSpec(name: "gpt-1.3b", layers: 24, hidden: 2048, heads: 16),
        ModelSpec(name: "gpt-2.7b", layers: 32, hidden: 2560, heads: 32),
        ModelSpec(name: "gpt-6.7b", layers: 32, hidden: 4096, heads: 32),
        ModelSpec(name: "gpt-13b", layers: 40, hidden: 5120, heads: 40),
        ModelSpec(name: "gpt-30b", layers: 48, hidden: 7168, heads: 56),
        ModelSpec(name: "gpt-70b", layers: 80, hidden: 8192, heads: 64),
        ModelSpec(name: "gpt-175b", layers: 96, hidden: 12288, heads: 96),
        ModelSpec(name: "gpt-530b", layers: 105, hidden: 20480, heads: 128),
        ModelSpec(name: "gpt-1t", layers: 128, hidden: 25600, heads: 160),
        llama("llama2-7b", layers: 32, hidden: 4096, heads: 32, kv: 32, ffn: 11008, vocabulary: 32000, sequence: 4096),
        llama("llama2-13b", layers: 40, hidden: 5120, heads: 40, kv: 40, ffn: 13824, vocabulary: 32000, sequence: 4096),
        llama("llama2-70b", layers: 80, hidden: 8192, heads: 64, kv: 8, ffn: 28672, vocabulary: 32000, sequence: 4096),
        llama("llama3-8b", layers: 32, hidden: 4096, heads: 32, kv: 8, ffn: 14336, vocabulary: 128256, sequence: 8192),
        llama("llama3-70b", layers: 80, hidden: 8192, heads: 64, kv: 8, ffn: 28672, vocabulary: 128256, sequence: 8192),
    ]

    /// The grammar `named` reads, for help texts and errors.
    public static let grammar = "L<layers>-H<hidden>[-A<heads>][-K<kv heads>][-F<ffn>][-V<vocabulary>][-S<sequence>][-GLU][-UNTIED][-ROPE][-NOBIAS]"

    /// A preset by name (`30B`, `gpt-30b`, `llama3-8b`), or a shape: `L24-H2048-A16-V131072`, with
    /// `K` key/value heads, `F` feed-forward width, `S` sequence, `GLU` a gated feed-forward block,
    /// `UNTIED` an LM head of its own, `ROPE` no learned positions, `NOBIAS` no biases. Any other
    /// part is an error, not ignored.
    public static func named(_ text: String) throws -> ModelSpec {
        let key = text.lowercased()
        if let p = presets.first(where: { $0.name == key || $0.name == "gpt-" + key }) { return p }
        let parts = key.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 2, parts[0].hasPrefix("l"), parts[1].hasPrefix("h"), Int(parts[0].dropFirst()) != nil else {
            let names = presets.map(\.name)
            let ranked = names.sorted { editDistance($0, key) < editDistance($1, key) }
            throw PlannerError(field: "model", reason: "unknown model '\(text)'; presets: \(names.joined(separator: ", ")) (closest: \(ranked[0])), or \(grammar)")
        }
        var values: [Character: Int] = [:]
        var glu = false, untied = false, rope = false, noBias = false
        for part in parts {
            switch part {
            case "glu", "swiglu": glu = true
            case "untied": untied = true
            case "rope": rope = true
            case "nobias": noBias = true
            default:
                guard let letter = part.first, "lhakfvs".contains(letter), let value = Int(part.dropFirst()), values[letter] == nil else {
                    throw PlannerError(field: "model", reason: "'\(part)' in '\(text)' is not a part of a model shape (\(grammar)); "
                                       + "each letter once, followed by a number, e.g. L24-H2048-A16-V131072")
                }
                values[letter] = value
            }
        }
        let h = values["h"] ?? 0
        var spec = ModelSpec(name: text, layers: values["l"] ?? 0, hidden: h, heads: values["a"] ?? max(1, h / 128),
                             sequenceLength: values["s"] ?? 2048, vocabulary: values["v"] ?? 51200,
                             keyValueHeads: values["k"], feedForward: values["f"], gatedFeedForward: glu, tiedEmbeddings: !untied,
                             learnedPositions: !rope, biases: !noBias)
        // A gated block of the same parameters as GPT's 4h uses 8h/3 (Llama's rule), unless F says otherwise.
        if glu && values["f"] == nil { spec.feedForward = 8 * h / 3 }
        try spec.validate()
        return spec
    }

    public func validate() throws {
        let fields = [("layers", layers), ("hidden", hidden), ("heads", heads), ("sequenceLength", sequenceLength),
                      ("vocabulary", vocabulary), ("keyValueHeads", keyValueHeads), ("feedForward", feedForward)]
        for (field, value) in fields where value <= 0 {
            throw PlannerError(field: "model.\(field)", reason: "must be positive, got \(value)")
        }
        // Bounds keep every product below Double's exact range and far beyond any real model.
        for (field, value) in fields where value > 10_000_000 {
            throw PlannerError(field: "model.\(field)", reason: "\(value) is beyond any model the planner sizes (at most 10,000,000)")
        }
        guard hidden % heads == 0 else { throw PlannerError(field: "model.heads", reason: "\(heads) must divide hidden \(hidden)") }
        guard heads % keyValueHeads == 0 else {
            throw PlannerError(field: "model.keyValueHeads", reason: "\(keyValueHeads) must divide the \(heads) heads")
        }
    }

    private var h: Double { Double(hidden) }
    /// Width of the keys (and of the values): key/value heads × head size.
    var keyValueWidth: Double { h * Double(keyValueHeads) / Double(heads) }

    /// Weights of one block's matrices: Q and O (h² each), K and V (h × kv width each), and the
    /// feed-forward block's two (three when gated) h × f matrices. 12h² for GPT.
    public var matrixParametersPerLayer: Double {
        2 * h * h + 2 * h * keyValueWidth + (gatedFeedForward ? 3 : 2) * h * Double(feedForward)
    }
    /// Parameters of one block: its matrices, their biases and two LayerNorms (12h² + 13h for GPT;
    /// RMSNorm's h each without biases).
    public var parametersPerLayer: Double {
        let biasCount = (h + 2 * keyValueWidth) + h + Double(feedForward) * (gatedFeedForward ? 2 : 1) + h
        return matrixParametersPerLayer + (biases ? biasCount : 0) + (biases ? 4 : 2) * h
    }
    /// The token embedding and learned positions.
    public var inputEmbeddingParameters: Double { Double(vocabulary + (learnedPositions ? sequenceLength : 0)) * h }
    /// The token embedding, learned positions, and the LM head when it is not tied.
    public var embeddingParameters: Double { inputEmbeddingParameters + (tiedEmbeddings ? 0 : Double(vocabulary) * h) }
    /// All parameters, including the final LayerNorm.
    public var parameters: Double { Double(layers) * parametersPerLayer + embeddingParameters + 2 * h }

    /// Forward FLOPs per token of one block: its matrix products (2 per weight) and attention's
    /// scores and context over the whole sequence (4·s·h, Megatron-LM's count: no causal halving).
    var forwardFLOPsPerTokenPerLayer: Double { 2 * matrixParametersPerLayer + 4 * Double(sequenceLength) * h }

    /// Model FLOPs per token for one training step without recomputation: three passes through
    /// the blocks and the LM head. 72·L·h²·(1 + s/(6h)) + 6·h·V for GPT (Megatron-LM's count
    /// without the recompute pass; the MFU convention of PaLM with attention).
    public var trainingFLOPsPerToken: Double {
        3 * Double(layers) * forwardFLOPsPerTokenPerLayer + 6 * h * Double(vocabulary)
    }

    /// The same with full activation recomputation (one more forward pass through the blocks):
    /// 96·L·h²·(1 + s/(6h)) + 6·h·V for GPT, Megatron-LM's Eq. (3) per token.
    public var recomputeFLOPsPerToken: Double {
        4 * Double(layers) * forwardFLOPsPerTokenPerLayer + 6 * h * Double(vocabulary)
    }

    /// 6 × parameters per token: the convention of Kaplan et al. and many training reports
    /// (no attention term, embeddings counted).
    public var sixNFLOPsPerToken: Double { 6 * parameters }
}
