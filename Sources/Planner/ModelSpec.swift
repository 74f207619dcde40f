import Foundation
import Basics

/// A dense GPT as the planner sizes it: layers L, hidden width h, heads a, sequence s, vocabulary V.
public struct ModelSpec: Codable, Sendable, Equatable {
    public var name: String
    public var layers: Int
    public var hidden: Int
    public var heads: Int
    public var sequenceLength: Int
    public var vocabulary: Int

    public init(name: String, layers: Int, hidden: Int, heads: Int, sequenceLength: Int = 2048, vocabulary: Int = 51200) {
        self.name = name
        self.layers = layers
        self.hidden = hidden
        self.heads = heads
        self.sequenceLength = sequenceLength
        self.vocabulary = vocabulary
    }

    /// GPT-3 style presets (Brown et al. 2020, Table 2.1; larger ones from Narayanan et al. 2021).
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
    ]

    /// A preset by name (`30B`, `gpt-30b`), or `L<layers>-H<hidden>[-A<heads>]`.
    public static func named(_ text: String) throws -> ModelSpec {
        let key = text.lowercased()
        if let p = presets.first(where: { $0.name == key || $0.name == "gpt-" + key }) { return p }
        let parts = key.split(separator: "-")
        if parts.count >= 2, parts[0].hasPrefix("l"), parts[1].hasPrefix("h"), let l = Int(parts[0].dropFirst()), let h = Int(parts[1].dropFirst()) {
            let a = parts.count > 2 && parts[2].hasPrefix("a") ? Int(parts[2].dropFirst()) : max(1, h / 128)
            let spec = ModelSpec(name: text, layers: l, hidden: h, heads: a ?? max(1, h / 128))
            try spec.validate()
            return spec
        }
        let names = presets.map(\.name)
        let ranked = names.sorted { editDistance($0, key) < editDistance($1, key) }
        throw PlannerError(field: "model", reason: "unknown model '\(text)'; presets: \(names.joined(separator: ", ")) (closest: \(ranked[0])), or L<layers>-H<hidden>-A<heads>")
    }

    public func validate() throws {
        for (field, value) in [("layers", layers), ("hidden", hidden), ("heads", heads), ("sequenceLength", sequenceLength), ("vocabulary", vocabulary)]
        where value <= 0 {
            throw PlannerError(field: "model.\(field)", reason: "must be positive, got \(value)")
        }
        guard hidden % heads == 0 else { throw PlannerError(field: "model.heads", reason: "\(heads) must divide hidden \(hidden)") }
    }

    /// Parameters of one transformer block: 12h² + 13h.
    public var parametersPerLayer: Double { 12 * Double(hidden) * Double(hidden) + 13 * Double(hidden) }
    /// Token and position embeddings (the LM head shares the token embedding).
    public var embeddingParameters: Double { Double(vocabulary + sequenceLength) * Double(hidden) }
    /// All parameters, including the final LayerNorm.
    public var parameters: Double { Double(layers) * parametersPerLayer + embeddingParameters + 2 * Double(hidden) }

    /// Model FLOPs per token for one training step without recomputation:
    /// 72·L·h²·(1 + s/(6h)) + 6·h·V (the Megatron-LM count without the recompute pass).
    public var trainingFLOPsPerToken: Double {
        let (l, h, s, v) = (Double(layers), Double(hidden), Double(sequenceLength), Double(vocabulary))
        return 72 * l * h * h * (1 + s / (6 * h)) + 6 * h * v
    }

    /// The same with full activation recomputation (one more forward pass through the blocks):
    /// 96·L·h²·(1 + s/(6h)) + 6·h·V, Megatron-LM's Eq. (3) per token.
    public var recomputeFLOPsPerToken: Double {
        let (l, h, s, v) = (Double(layers), Double(hidden), Double(sequenceLength), Double(vocabulary))
        return 96 * l * h * h * (1 + s / (6 * h)) + 6 * h * v
    }
}
