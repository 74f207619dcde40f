import Foundation
import Dispatch
import ModelCore
import TensorCore

/// Errors that stop a training run.
public enum TrainingError: Error, CustomStringConvertible {
    /// The loss became NaN or infinite.
    case nonFiniteLoss(step: Int, loss: Float)
    /// The run folder could not be written.
    case runDirectory(path: String, reason: String)

    public var description: String {
        switch self {
        case let .nonFiniteLoss(step, loss):
            return "loss became \(loss) at step \(step); lower optimizer.learningRate or set optimizer.gradientClip"
        case let .runDirectory(path, reason):
            return "cannot write run folder \(path): \(reason)"
        }
    }
}

/// What one optimizer step did, for progress lines and `metrics.jsonl`.
public struct StepReport: Sendable, Codable, Equatable {
    /// 1-based step number.
    public var step: Int
    public var totalSteps: Int
    /// Mean training loss over the step's micro-batches (nats per token).
    public var loss: Float
    public var learningRate: Float
    /// Gradient norm before clipping.
    public var gradientNorm: Float
    /// Training tokens per second of this step (wall time, evaluation excluded).
    public var tokensPerSecond: Double
    /// Seconds since the run started.
    public var elapsedSeconds: Double
    /// Estimated seconds to the last step.
    public var etaSeconds: Double
    /// Validation loss, on steps where it was measured.
    public var validationLoss: Float?
}

/// Single-process GPT training on the synthetic Markov source: the loop behind `tributary train`.
public final class Trainer {
    public let config: TrainConfig
    public let model: GPT
    public let optimizer: any Optimizer
    /// The synthetic source, when the run trains on it (nil for prepared shards).
    public let source: MarkovSource?
    public let schedule: LearningRateSchedule
    /// Optimizer steps completed.
    public private(set) var step = 0
    private var train: TokenStream
    private var validation: TokenStream
    private var inputs: [Int32]
    private var targets: [Int32]
    private let parallelism: Parallelism

    /// Builds and initialises the model, optimizer and data for a validated config.
    public init(config: TrainConfig) throws {
        try config.validate()
        self.config = config
        parallelism = Parallelism(threads: config.threads)
        model = try GPT(config: config.model, maxBatch: config.batchSize, maxLength: config.sequenceLength, parallelism: parallelism)
        model.initializeParameters(seed: config.seed)
        let o = config.optimizer
        optimizer = o.make(layout: model.layout)
        schedule = LearningRateSchedule(peak: o.learningRate, minRatio: o.minLearningRateRatio, warmupSteps: o.warmupSteps, totalSteps: config.steps)
        if let prepared = config.data.prepared {
            let folder = URL(fileURLWithPath: prepared)
            guard let manifest = DataManifest.load(from: folder) else { throw ConfigError(field: "data.prepared", reason: "\(prepared) has no readable manifest.json; run `tributary data prepare` first") }
            guard manifest.vocabularySize <= config.model.vocabSize else {
                throw ConfigError(field: "model.vocabSize", reason: "is \(config.model.vocabSize) but the prepared data uses \(manifest.vocabularySize) token ids")
            }
            let needed = config.batchSize * config.sequenceLength + 1
            let trainTokens = try manifest.tokens(split: "train", in: folder)
            let validationTokens = try manifest.tokens(split: "validation", in: folder)
            guard trainTokens.count > needed, validationTokens.count > needed else {
                throw ConfigError(field: "data.prepared", reason: "has \(trainTokens.count) train and \(validationTokens.count) validation tokens; a batch needs \(needed)")
            }
            source = nil
            train = config.data.order == .shuffled
                ? TokenStream(tokens: trainTokens, shuffledWindows: config.sequenceLength, seed: config.seed &+ 3)
                : TokenStream(tokens: trainTokens)
            validation = TokenStream(tokens: validationTokens)
        } else {
            let markov = MarkovSource(config.data)
            source = markov
            train = TokenStream(tokens: markov.generate(count: config.data.trainTokens, seed: config.seed &+ 1))
            validation = TokenStream(tokens: markov.generate(count: config.data.validationTokens, seed: config.seed &+ 2))
        }
        inputs = [Int32](repeating: 0, count: config.batchSize * config.sequenceLength)
        targets = inputs
    }

    /// Runs one optimizer step (all micro-batches); returns the mean loss, pre-clip norm and rate.
    @discardableResult
    public func trainStep() throws -> (loss: Float, gradientNorm: Float, learningRate: Float) {
        let loss = try computeGradients()
        let (norm, rate) = applyGradients()
        return (loss, norm, rate)
    }

    /// Forward and backward over the step's sequences (`sequences`, or batch size × gradient
    /// accumulation) in micro-batches of at most the batch size: leaves the mean gradient over
    /// all their tokens in `model.gradients` (for a strategy to average across workers) and
    /// returns the mean loss.
    public func computeGradients(sequences: Int? = nil) throws -> Float {
        let (b, t) = (config.batchSize, config.sequenceLength)
        let total = max(1, sequences ?? b * config.gradientAccumulation)
        model.zeroGradients()
        var lossSum: Float = 0
        var done = 0
        while done < total {
            let n = min(b, total - done)
            let share = Float(n) / Float(total)
            let loss = try runMicroBatch(stream: &train, batch: n, length: t)
            try model.backward(lossScale: share)
            lossSum += loss * share
            done += n
        }
        let loss = lossSum
        guard loss.isFinite else { throw TrainingError.nonFiniteLoss(step: step + 1, loss: loss) }
        return loss
    }

    /// Clips `model.gradients` by global norm and takes one AdamW step at the scheduled rate;
    /// returns the pre-clip norm and the rate.
    @discardableResult
    public func applyGradients() -> (gradientNorm: Float, learningRate: Float) {
        let norm = gradientNorm(model.gradients, parallelism: parallelism)
        let clip = config.optimizer.gradientClip
        let scale: Float = (clip > 0 && norm > clip) ? clip / norm : 1
        let rate = schedule.rate(at: step)
        optimizer.step(parameters: model.parameters, gradients: model.gradients, learningRate: rate,
                       gradientScale: scale, parallelism: parallelism)
        step += 1
        return (norm, rate)
    }

    /// Tokens in the training split (workers start at different offsets into it).
    public var trainTokenCount: Int { train.tokens.count }

    /// Where the training data stream is (saved in checkpoints).
    public var trainCursor: Int { train.cursor }

    /// Continues from a checkpoint: the step count (schedule and AdamW bias correction) and the
    /// data position. Parameters and moments are loaded by `CheckpointStore`.
    public func restore(step: Int, trainCursor: Int) {
        self.step = step
        optimizer.restore(stepCount: step)
        train.seek(to: trainCursor)
    }

    /// Mean loss over `evaluation.batches` validation batches, always the same ones.
    public func validationLoss() throws -> Float {
        let (sum, count) = try validationLossSum(part: 0, of: 1)
        return sum / Float(count)
    }

    /// Sum of the losses of validation batches `part`, `part + parts`, … of the
    /// `evaluation.batches` that `validationLoss` averages, and how many those are: workers
    /// each measure a share and add the sums.
    public func validationLossSum(part: Int, of parts: Int) throws -> (sum: Float, batches: Int) {
        try validationLossSum { $0 % parts == part }
    }

    /// The sum of the losses of the validation batches (of the first `evaluation.batches`) whose
    /// index `include` selects, and how many those are.
    public func validationLossSum(include: (Int) -> Bool) throws -> (sum: Float, batches: Int) {
        validation.seek(to: 0)
        var total: Float = 0, count = 0
        for i in 0..<config.evaluation.batches {
            if include(i) {
                total += try runMicroBatch(stream: &validation, batch: config.batchSize, length: config.sequenceLength)
                count += 1
            } else {
                validation.skipBatch(size: config.batchSize * config.sequenceLength)
            }
        }
        return (total, count)
    }

    private func runMicroBatch(stream: inout TokenStream, batch b: Int, length t: Int) throws -> Float {
        let n = b * t
        inputs.withUnsafeMutableBufferPointer { i in
            targets.withUnsafeMutableBufferPointer {
                stream.nextBatch(inputs: UnsafeMutableBufferPointer(rebasing: i[..<n]), targets: UnsafeMutableBufferPointer(rebasing: $0[..<n]))
            }
        }
        return try inputs.withUnsafeBufferPointer { i in
            try targets.withUnsafeBufferPointer {
                try model.forward(tokens: UnsafeBufferPointer(rebasing: i[..<n]), targets: UnsafeBufferPointer(rebasing: $0[..<n]), batch: b, length: t)
            }
        } ?? .nan
    }

    /// Trains to `config.steps`, measuring validation loss every `evaluation.interval` steps and at
    /// the end; calls `onStep` after every step and appends it to the run folder if one is given.
    /// Saves a checkpoint every `checkpoint.interval` steps and at the end into `checkpoints`.
    /// When `shouldStop` turns true (an interrupt), saves a checkpoint after the current step and
    /// returns early.
    public func run(runDirectory: RunDirectory? = nil, checkpoints: CheckpointStore? = nil,
                    shouldStop: () -> Bool = { false }, onStep: (StepReport) -> Void = { _ in }) throws -> StepReport? {
        let start = DispatchTime.now().uptimeNanoseconds
        var trainingSeconds = 0.0
        var last: StepReport?
        while step < config.steps {
            let stepStart = DispatchTime.now().uptimeNanoseconds
            let (loss, norm, rate) = try trainStep()
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - stepStart) / 1e9
            trainingSeconds += seconds
            let evaluate = step == config.steps || (config.evaluation.interval > 0 && step % config.evaluation.interval == 0)
            let validation = evaluate ? try validationLoss() : nil
            let perStep = trainingSeconds / Double(step)
            let report = StepReport(
                step: step, totalSteps: config.steps, loss: loss, learningRate: rate, gradientNorm: norm,
                tokensPerSecond: Double(config.tokensPerStep) / seconds,
                elapsedSeconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9,
                etaSeconds: perStep * Double(config.steps - step), validationLoss: validation)
            try runDirectory?.append(report)
            onStep(report)
            last = report
            let interval = config.checkpoint.interval
            let stopping = shouldStop()
            if let checkpoints, stopping || step == config.steps || (interval > 0 && step % interval == 0) {
                try checkpoints.save(self)
            }
            if stopping { break }
        }
        return last
    }
}
