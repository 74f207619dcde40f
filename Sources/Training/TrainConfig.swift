import Foundation
import ModelCore
import Yams

/// Everything a single-process training run needs, loadable from YAML.
///
/// Every field has a default, so a config file names only what it changes. Unknown keys and
/// out-of-range values are errors that name the field.
public struct TrainConfig: Sendable, Codable, Equatable {
    /// The model: a preset name (`tiny`, `gpt2Small`) or explicit dimensions.
    public var model: GPTConfig = .tiny
    /// Name of the preset `model` came from, if any (kept for the resolved config).
    public var modelPreset: String? = "tiny"
    /// Sequences per micro-batch (B).
    public var batchSize = 8
    /// Tokens per sequence (T), at most the model's context length.
    public var sequenceLength = 64
    /// Optimizer steps to run.
    public var steps = 200
    /// Micro-batches whose gradients are summed before each optimizer step.
    public var gradientAccumulation = 1
    public var optimizer = OptimizerConfig()
    public var data = DataConfig()
    public var evaluation = EvaluationConfig()
    public var checkpoint = CheckpointConfig()
    /// How workers of a multi-worker run combine their work (ignored by single-process `train`).
    public var strategy = StrategyConfig()
    /// Seed for initialisation and data.
    public var seed: UInt64 = 1337
    /// Threads for BLAS and the other kernels.
    public var threads = 2

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, batchSize, sequenceLength, steps, gradientAccumulation, optimizer, data, evaluation, checkpoint, strategy, seed, threads
    }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if c.contains(.model) {
            if let name = try? c.decode(String.self, forKey: .model) {
                guard let preset = GPTConfig.presets[name] else {
                    let hint = closestName(to: name, in: Array(GPTConfig.presets.keys)).map { " (did you mean '\($0)'?)" } ?? ""
                    throw ConfigError(field: "model", reason: "unknown preset '\(name)'\(hint); presets: \(GPTConfig.presets.keys.sorted().joined(separator: ", ")), or give vocabSize, contextLength, layers, heads, channels")
                }
                model = preset
                modelPreset = name
            } else {
                model = try c.decode(ModelDimensions.self, forKey: .model).config
                modelPreset = nil
            }
        }
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? batchSize
        sequenceLength = try c.decodeIfPresent(Int.self, forKey: .sequenceLength) ?? sequenceLength
        steps = try c.decodeIfPresent(Int.self, forKey: .steps) ?? steps
        gradientAccumulation = try c.decodeIfPresent(Int.self, forKey: .gradientAccumulation) ?? gradientAccumulation
        optimizer = try c.decodeIfPresent(OptimizerConfig.self, forKey: .optimizer) ?? optimizer
        data = try c.decodeIfPresent(DataConfig.self, forKey: .data) ?? data
        evaluation = try c.decodeIfPresent(EvaluationConfig.self, forKey: .evaluation) ?? evaluation
        checkpoint = try c.decodeIfPresent(CheckpointConfig.self, forKey: .checkpoint) ?? checkpoint
        strategy = try c.decodeIfPresent(StrategyConfig.self, forKey: .strategy) ?? strategy
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? seed
        threads = try c.decodeIfPresent(Int.self, forKey: .threads) ?? threads
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if let modelPreset { try c.encode(modelPreset, forKey: .model) } else { try c.encode(ModelDimensions(model), forKey: .model) }
        try c.encode(batchSize, forKey: .batchSize)
        try c.encode(sequenceLength, forKey: .sequenceLength)
        try c.encode(steps, forKey: .steps)
        try c.encode(gradientAccumulation, forKey: .gradientAccumulation)
        try c.encode(optimizer, forKey: .optimizer)
        try c.encode(data, forKey: .data)
        try c.encode(evaluation, forKey: .evaluation)
        try c.encode(checkpoint, forKey: .checkpoint)
        try c.encode(strategy, forKey: .strategy)
        try c.encode(seed, forKey: .seed)
        try c.encode(threads, forKey: .threads)
    }

    /// Checks every field; throws `ConfigError` naming the first bad one.
    public func validate() throws {
        do { try model.validate() } catch let ModelError.invalidConfig(field, reason) {
            throw ConfigError(field: "model.\(field)", reason: reason)
        }
        try requirePositive("batchSize", batchSize)
        try requirePositive("sequenceLength", sequenceLength)
        if sequenceLength > model.contextLength {
            throw ConfigError(field: "sequenceLength", reason: "\(sequenceLength) exceeds the model's context length \(model.contextLength)")
        }
        try requirePositive("steps", steps)
        try requirePositive("gradientAccumulation", gradientAccumulation)
        try requirePositive("threads", threads)
        try optimizer.validate(steps: steps)
        try data.validate(modelVocabulary: model.vocabSize, tokensPerBatch: batchSize * sequenceLength)
        try evaluation.validate()
        try checkpoint.validate()
        try strategy.validate()
    }

    /// Tokens consumed by one optimizer step.
    public var tokensPerStep: Int { batchSize * sequenceLength * gradientAccumulation }

    /// Parses YAML text; `source` names the file in errors.
    public static func load(yaml text: String, source: String = "config") throws -> TrainConfig {
        let config: TrainConfig
        do {
            config = try YAMLDecoder().decode(TrainConfig.self, from: text.isEmpty ? "{}" : text)
        } catch let error as ConfigError {
            throw error
        } catch let DecodingError.dataCorrupted(context) where context.underlyingError is ConfigError {
            // Yams wraps errors thrown by our own init(from:) as "not valid YAML"; unwrap them.
            throw context.underlyingError!
        } catch let DecodingError.typeMismatch(type, context), let DecodingError.valueNotFound(type, context) {
            throw ConfigError(field: context.codingPath.map(\.stringValue).joined(separator: "."),
                              reason: "expected a value of type \(type) in \(source)")
        } catch let DecodingError.dataCorrupted(context) {
            throw ConfigError(field: context.codingPath.map(\.stringValue).joined(separator: "."),
                              reason: "\(context.debugDescription) in \(source)")
        } catch {
            throw ConfigError(field: "", reason: "\(source) is not valid YAML: \(error)")
        }
        try config.validate()
        return config
    }

    /// Reads and parses a YAML file.
    public static func load(contentsOf url: URL) throws -> TrainConfig {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw ConfigError(field: "", reason: "cannot read \(url.path) as UTF-8 text")
        }
        return try load(yaml: text, source: url.path)
    }

    /// The resolved config as YAML (every field, defaults included).
    public func yaml() throws -> String { try YAMLEncoder().encode(self) }
}

/// Explicit model dimensions in a config file.
struct ModelDimensions: Codable {
    var vocabSize: Int, contextLength: Int, layers: Int, heads: Int, channels: Int

    enum CodingKeys: String, CodingKey, CaseIterable { case vocabSize, contextLength, layers, heads, channels }

    init(_ c: GPTConfig) {
        vocabSize = c.vocabSize; contextLength = c.contextLength; layers = c.layers; heads = c.heads; channels = c.channels
    }

    init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func field(_ key: CodingKeys) throws -> Int {
            guard let v = try c.decodeIfPresent(Int.self, forKey: key) else {
                throw ConfigError(field: decoder.path(key), reason: "missing; an explicit model needs vocabSize, contextLength, layers, heads and channels")
            }
            return v
        }
        vocabSize = try field(.vocabSize); contextLength = try field(.contextLength)
        layers = try field(.layers); heads = try field(.heads); channels = try field(.channels)
    }

    var config: GPTConfig {
        GPTConfig(vocabSize: vocabSize, contextLength: contextLength, layers: layers, heads: heads, channels: channels)
    }
}

/// AdamW, clipping and learning-rate schedule settings.
public struct OptimizerConfig: Sendable, Codable, Equatable {
    /// The update rule.
    public enum Name: String, Sendable, Codable, CaseIterable {
        /// AdamW on every tensor.
        case adamw
        /// Muon on the matrices inside the blocks, AdamW on the rest (see `Muon`).
        case muon
    }

    public var name = Name.adamw
    /// Peak learning rate, reached after warm-up.
    public var learningRate: Float = 3e-3
    /// Final learning rate as a fraction of the peak (cosine decay ends there).
    public var minLearningRateRatio: Float = 0.1
    /// Steps of linear warm-up.
    public var warmupSteps = 20
    public var weightDecay: Float = 0.1
    public var beta1: Float = 0.9
    public var beta2: Float = 0.95
    public var epsilon: Float = 1e-8
    /// Global gradient-norm clip; 0 disables clipping.
    public var gradientClip: Float = 1.0
    /// Muon's momentum (its matrices; AdamW's betas apply to the rest).
    public var muonMomentum: Float = 0.95
    /// Muon's Newton–Schulz iterations per matrix and step.
    public var newtonSchulzSteps = 5

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, learningRate, minLearningRateRatio, warmupSteps, weightDecay, beta1, beta2, epsilon, gradientClip
        case muonMomentum, newtonSchulzSteps
    }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let text = try c.decodeIfPresent(String.self, forKey: .name) {
            guard let n = Name(rawValue: text) else {
                throw ConfigError(field: "optimizer.name", reason: "unknown optimizer '\(text)'; use \(Name.allCases.map(\.rawValue).joined(separator: " or "))")
            }
            name = n
        }
        learningRate = try c.decodeIfPresent(Float.self, forKey: .learningRate) ?? learningRate
        minLearningRateRatio = try c.decodeIfPresent(Float.self, forKey: .minLearningRateRatio) ?? minLearningRateRatio
        warmupSteps = try c.decodeIfPresent(Int.self, forKey: .warmupSteps) ?? warmupSteps
        weightDecay = try c.decodeIfPresent(Float.self, forKey: .weightDecay) ?? weightDecay
        beta1 = try c.decodeIfPresent(Float.self, forKey: .beta1) ?? beta1
        beta2 = try c.decodeIfPresent(Float.self, forKey: .beta2) ?? beta2
        epsilon = try c.decodeIfPresent(Float.self, forKey: .epsilon) ?? epsilon
        gradientClip = try c.decodeIfPresent(Float.self, forKey: .gradientClip) ?? gradientClip
        muonMomentum = try c.decodeIfPresent(Float.self, forKey: .muonMomentum) ?? muonMomentum
        newtonSchulzSteps = try c.decodeIfPresent(Int.self, forKey: .newtonSchulzSteps) ?? newtonSchulzSteps
    }

    public func encode(to encoder: Encoder) throws {
        // Floats go out through their shortest decimal form (3e-3, not 3.00000002607703e-3).
        func short(_ x: Float) -> Double { Double("\(x)") ?? Double(x) }
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(short(learningRate), forKey: .learningRate)
        try c.encode(short(minLearningRateRatio), forKey: .minLearningRateRatio)
        try c.encode(warmupSteps, forKey: .warmupSteps)
        try c.encode(short(weightDecay), forKey: .weightDecay)
        try c.encode(short(beta1), forKey: .beta1)
        try c.encode(short(beta2), forKey: .beta2)
        try c.encode(short(epsilon), forKey: .epsilon)
        try c.encode(short(gradientClip), forKey: .gradientClip)
        if name == .muon {
            try c.encode(short(muonMomentum), forKey: .muonMomentum)
            try c.encode(newtonSchulzSteps, forKey: .newtonSchulzSteps)
        }
    }

    func validate(steps: Int) throws {
        guard learningRate > 0, learningRate.isFinite else { throw ConfigError(field: "optimizer.learningRate", reason: "must be positive, got \(learningRate)") }
        guard (0...1).contains(minLearningRateRatio) else { throw ConfigError(field: "optimizer.minLearningRateRatio", reason: "must be in 0...1, got \(minLearningRateRatio)") }
        guard warmupSteps >= 0 else { throw ConfigError(field: "optimizer.warmupSteps", reason: "must not be negative, got \(warmupSteps)") }
        guard weightDecay >= 0 else { throw ConfigError(field: "optimizer.weightDecay", reason: "must not be negative, got \(weightDecay)") }
        guard (0..<1).contains(beta1) else { throw ConfigError(field: "optimizer.beta1", reason: "must be in [0, 1), got \(beta1)") }
        guard (0..<1).contains(beta2) else { throw ConfigError(field: "optimizer.beta2", reason: "must be in [0, 1), got \(beta2)") }
        guard epsilon > 0 else { throw ConfigError(field: "optimizer.epsilon", reason: "must be positive, got \(epsilon)") }
        guard gradientClip >= 0 else { throw ConfigError(field: "optimizer.gradientClip", reason: "must not be negative (0 disables clipping), got \(gradientClip)") }
        guard (0..<1).contains(muonMomentum) else { throw ConfigError(field: "optimizer.muonMomentum", reason: "must be in [0, 1), got \(muonMomentum)") }
        guard (1...20).contains(newtonSchulzSteps) else {
            throw ConfigError(field: "optimizer.newtonSchulzSteps", reason: "must be in 1...20 (5 is Muon's), got \(newtonSchulzSteps)")
        }
    }
}

/// Where training tokens come from.
public struct DataConfig: Sendable, Codable, Equatable {
    /// A folder written by `tributary data prepare`; when set, training reads its token shards
    /// instead of the synthetic Markov source.
    public var prepared: String?
    /// Number of symbols of the synthetic Markov source; at most the model's vocabulary.
    public var markovVocabulary = 64
    /// Successors per state that carry most of the probability mass.
    public var markovBranching = 4
    /// Probability mass spread uniformly over all successors (keeps the chain ergodic).
    public var markovSmoothing: Double = 0.02
    /// Seed of the source's transition table.
    public var markovSeed: UInt64 = 42
    /// Tokens generated for training and for validation.
    public var trainTokens = 1_000_000
    public var validationTokens = 65_536
    /// How training reads a prepared corpus.
    public var order = DataOrder.shuffled

    /// How training reads a prepared corpus.
    public enum DataOrder: String, Codable, Sendable {
        /// Windows of one sequence in a seeded random order: every batch, and every worker's
        /// share, mixes the whole corpus (whose files may each hold one topic).
        case shuffled
        /// Consecutive tokens, file after file.
        case sequential
    }

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case prepared, markovVocabulary, markovBranching, markovSmoothing, markovSeed, trainTokens, validationTokens, order
    }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        prepared = try c.decodeIfPresent(String.self, forKey: .prepared)
        markovVocabulary = try c.decodeIfPresent(Int.self, forKey: .markovVocabulary) ?? markovVocabulary
        markovBranching = try c.decodeIfPresent(Int.self, forKey: .markovBranching) ?? markovBranching
        markovSmoothing = try c.decodeIfPresent(Double.self, forKey: .markovSmoothing) ?? markovSmoothing
        markovSeed = try c.decodeIfPresent(UInt64.self, forKey: .markovSeed) ?? markovSeed
        trainTokens = try c.decodeIfPresent(Int.self, forKey: .trainTokens) ?? trainTokens
        validationTokens = try c.decodeIfPresent(Int.self, forKey: .validationTokens) ?? validationTokens
        if let name = try c.decodeIfPresent(String.self, forKey: .order) {
            guard let order = DataOrder(rawValue: name) else {
                throw ConfigError(field: "data.order", reason: "must be shuffled or sequential, got '\(name)'")
            }
            self.order = order
        }
    }

    /// Most tokens a config may ask the synthetic source to generate (bounds memory).
    public static let maxSyntheticTokens = 1 << 30

    func validate(modelVocabulary: Int, tokensPerBatch: Int) throws {
        if let prepared {
            guard !prepared.isEmpty else { throw ConfigError(field: "data.prepared", reason: "is empty; name a folder written by `tributary data prepare`") }
            return // the shards are checked against the model when the trainer loads them
        }
        guard markovVocabulary > 1, markovVocabulary <= modelVocabulary else {
            throw ConfigError(field: "data.markovVocabulary", reason: "must be in 2...\(modelVocabulary) (the model's vocabulary), got \(markovVocabulary)")
        }
        guard markovBranching >= 1, markovBranching <= markovVocabulary else {
            throw ConfigError(field: "data.markovBranching", reason: "must be in 1...\(markovVocabulary), got \(markovBranching)")
        }
        guard markovSmoothing > 0, markovSmoothing <= 1 else {
            throw ConfigError(field: "data.markovSmoothing", reason: "must be in (0, 1], got \(markovSmoothing)")
        }
        for (name, value) in [("trainTokens", trainTokens), ("validationTokens", validationTokens)] {
            guard value > tokensPerBatch, value <= Self.maxSyntheticTokens else {
                throw ConfigError(field: "data.\(name)", reason: "must be in \(tokensPerBatch + 1)...\(Self.maxSyntheticTokens) (more than one batch), got \(value)")
            }
        }
    }
}

/// How often and how much to measure validation loss.
public struct EvaluationConfig: Sendable, Codable, Equatable {
    /// Steps between validation measurements; 0 measures only at the end.
    public var interval = 50
    /// Batches averaged per measurement: the first of the validation split, each of `batchSize`
    /// sequences (a worker's batch), so runs with different batches measure the same text only
    /// when `batches × batchSize` is the same (`experiment scaling` sets it so).
    public var batches = 8

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable { case interval, batches }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        interval = try c.decodeIfPresent(Int.self, forKey: .interval) ?? interval
        batches = try c.decodeIfPresent(Int.self, forKey: .batches) ?? batches
    }

    func validate() throws {
        guard interval >= 0 else { throw ConfigError(field: "evaluation.interval", reason: "must not be negative, got \(interval)") }
        guard batches >= 1 else { throw ConfigError(field: "evaluation.batches", reason: "must be at least 1, got \(batches)") }
    }
}

/// How often to save checkpoints and how many to keep.
public struct CheckpointConfig: Sendable, Codable, Equatable {
    /// Steps between checkpoints; 0 saves only at the end (and on interrupt).
    public var interval = 100
    /// Newest checkpoints kept in the run folder.
    public var keep = 3

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable { case interval, keep }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        interval = try c.decodeIfPresent(Int.self, forKey: .interval) ?? interval
        keep = try c.decodeIfPresent(Int.self, forKey: .keep) ?? keep
    }

    func validate() throws {
        guard interval >= 0 else { throw ConfigError(field: "checkpoint.interval", reason: "must not be negative (0 saves only at the end), got \(interval)") }
        guard keep >= 1 else { throw ConfigError(field: "checkpoint.keep", reason: "must be at least 1, got \(keep)") }
    }
}

/// How the workers of a multi-worker run combine their work.
public struct StrategyConfig: Sendable, Codable, Equatable {
    public enum Name: String, Sendable, Codable, CaseIterable {
        /// All-reduce gradients every step.
        case ddp
        /// H local AdamW steps, then average pseudo-gradients and take an outer Nesterov step.
        case diloco
    }
    /// How a DiLoCo round ends.
    public enum RoundKind: String, Sendable, Codable, CaseIterable {
        /// After `innerSteps` steps on every worker (equal tokens per worker).
        case steps
        /// After a time budget of `innerSteps` steps of the fastest worker, measured in the first
        /// round: faster workers take more steps and their pseudo-gradients weigh more.
        case time
    }

    public var name = Name.ddp
    /// Wire codec for the all-reduce: fp32, fp16, bf16, int8, int4, topk (see `bench codecs`).
    public var codec = "fp32"
    /// DiLoCo's H: inner steps per round.
    public var innerSteps = 50
    public var round = RoundKind.time
    /// Outer SGD learning rate and Nesterov momentum; nil: chosen from the number of workers, H
    /// and the number of rounds (see `OuterSettings` in Strategies).
    public var outerLearningRate: Float?
    public var outerMomentum: Float?
    /// Decay of the error-feedback residual for lossy codecs (1 keeps all of it).
    public var errorFeedback: Float = 1
    /// DiLoCo: run each round's all-reduce while the next round's inner steps run, applying
    /// the averaged update one round late (workers keep their own latest progress on top).
    public var overlap = false
    /// With overlap, the rounds a background sum has to land: 1 (by the next round's end) or 2 (the
    /// one after: it is spread over most of a round and no worker waits for it, a round more late).
    public var overlapRounds = 1
    /// DiLoCo: every this many rounds, also average the inner optimizer's state (moments) over
    /// the workers, as DES-LOC does at its own interval; 0 never.
    public var momentSync = 0
    /// DiLoCo streaming: each round sends one of this many interleaved fragments of the
    /// pseudo-gradient (blocks of 64 values b ≡ round mod fragments: `InterleavedFragments`), so a
    /// coordinate syncs every `fragments` rounds and no round carries more than 1/fragments of the
    /// model; 1 sends it whole.
    public var fragments = 1

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, codec, innerSteps, round, outerLearningRate, outerMomentum, errorFeedback, overlap, overlapRounds, momentSync,
             fragments
    }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let text = try c.decodeIfPresent(String.self, forKey: .name) {
            guard let n = Name(rawValue: text) else {
                throw ConfigError(field: "strategy.name", reason: "unknown strategy '\(text)'; use \(Name.allCases.map(\.rawValue).joined(separator: " or "))")
            }
            name = n
        }
        if let text = try c.decodeIfPresent(String.self, forKey: .round) {
            guard let r = RoundKind(rawValue: text) else {
                throw ConfigError(field: "strategy.round", reason: "unknown round kind '\(text)'; use \(RoundKind.allCases.map(\.rawValue).joined(separator: " or "))")
            }
            round = r
        }
        codec = try c.decodeIfPresent(String.self, forKey: .codec) ?? codec
        innerSteps = try c.decodeIfPresent(Int.self, forKey: .innerSteps) ?? innerSteps
        outerLearningRate = try c.decodeIfPresent(Float.self, forKey: .outerLearningRate)
        outerMomentum = try c.decodeIfPresent(Float.self, forKey: .outerMomentum)
        errorFeedback = try c.decodeIfPresent(Float.self, forKey: .errorFeedback) ?? errorFeedback
        overlap = try c.decodeIfPresent(Bool.self, forKey: .overlap) ?? overlap
        overlapRounds = try c.decodeIfPresent(Int.self, forKey: .overlapRounds) ?? overlapRounds
        momentSync = try c.decodeIfPresent(Int.self, forKey: .momentSync) ?? momentSync
        fragments = try c.decodeIfPresent(Int.self, forKey: .fragments) ?? fragments
    }

    public func encode(to encoder: Encoder) throws {
        func short(_ x: Float) -> Double { Double("\(x)") ?? Double(x) }
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name.rawValue, forKey: .name)
        try c.encode(codec, forKey: .codec)
        try c.encode(innerSteps, forKey: .innerSteps)
        try c.encode(round.rawValue, forKey: .round)
        try c.encodeIfPresent(outerLearningRate.map(short), forKey: .outerLearningRate)
        try c.encodeIfPresent(outerMomentum.map(short), forKey: .outerMomentum)
        try c.encode(short(errorFeedback), forKey: .errorFeedback)
        try c.encode(overlap, forKey: .overlap)
        if overlapRounds != 1 { try c.encode(overlapRounds, forKey: .overlapRounds) }
        if momentSync != 0 { try c.encode(momentSync, forKey: .momentSync) }
        if fragments != 1 { try c.encode(fragments, forKey: .fragments) }
    }

    /// DiLoCo rounds in a run of `steps` steps: rounds of `innerSteps`, the last one shorter if they do not divide.
    public func rounds(steps: Int) -> Int { (steps + innerSteps - 1) / innerSteps }

    /// Outer steps each parameter takes in a run of `steps` steps: with fragments, each takes one every
    /// `fragments` rounds. The outer settings' rule is a function of this count.
    public func outerSteps(steps: Int) -> Int { rounds(steps: steps) / fragments }

    func validate() throws {
        try requirePositive("strategy.innerSteps", innerSteps)
        if let outerLearningRate, !(outerLearningRate > 0 && outerLearningRate.isFinite) {
            throw ConfigError(field: "strategy.outerLearningRate", reason: "must be positive (or left out to choose it from the run's shape), got \(outerLearningRate)")
        }
        if let outerMomentum, !(0..<1).contains(outerMomentum) {
            throw ConfigError(field: "strategy.outerMomentum", reason: "must be in [0, 1) (or left out to choose it from the run's shape), got \(outerMomentum)")
        }
        guard (1...64).contains(fragments) else { throw ConfigError(field: "strategy.fragments", reason: "must be in 1...64 (1 sends the whole model each round), got \(fragments)") }
        guard (1...2).contains(overlapRounds) else {
            throw ConfigError(field: "strategy.overlapRounds", reason: "must be 1 or 2 (rounds a background sum has to land), got \(overlapRounds)")
        }
        guard overlapRounds == 1 || overlap else {
            throw ConfigError(field: "strategy.overlapRounds", reason: "\(overlapRounds) needs overlap: true (without overlap every sum lands in its own round)")
        }
        guard momentSync >= 0 else { throw ConfigError(field: "strategy.momentSync", reason: "must be 0 (never) or a number of rounds, got \(momentSync)") }
        guard (0...1).contains(errorFeedback) else { throw ConfigError(field: "strategy.errorFeedback", reason: "must be in [0, 1], got \(errorFeedback)") }
    }
}

func requirePositive(_ field: String, _ value: Int) throws {
    guard value > 0 else { throw ConfigError(field: field, reason: "must be positive, got \(value)") }
}
