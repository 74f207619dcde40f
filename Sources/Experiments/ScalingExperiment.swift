import ClusterRuns
import Foundation
import ModelCore
import Strategies
import Training

/// The analogue of the DiLoCo scaling-law paper's Table 4 (arXiv 2503.09799) on this machine:
/// for two model sizes, DDP and DiLoCo with M ∈ {1, 2, 4, 8} workers train on the same tokens
/// (a fixed global batch of `globalBatch` sequences for `steps` steps: each DiLoCo worker takes
/// globalBatch/M sequences per inner step), and the report gives each cell's validation loss
/// against DDP's best and the bytes it sent.
///
/// DDP's learning rate (and, for the small model, its batch at equal tokens) comes from a sweep
/// the experiment runs, and DDP also runs with Muon; DiLoCo (Muon inside, the recipe this
/// experiment found best) gets its outer learning rate from a sweep around `OuterSettings`' rule
/// per M on the small model, whose best factor the large model reuses (the paper finds the best
/// outer learning rate independent of model size). DiLoCo with AdamW inside, int4 and top-k
/// codecs run at those settings. Every run is a real `tributary local` run
/// (coordinator, worker processes, ring over loopback) with unlimited links: loss does not
/// depend on the link.
public struct ScalingExperiment {
    public var quick = false
    public var runs: URL
    public var executable: URL

    public init(runs: URL, executable: URL) {
        self.runs = runs
        self.executable = executable
    }

    /// A model of the experiment, by its dimensions.
    public struct Size: Codable, Sendable {
        public var name: String
        public var model: GPTConfig
        /// DDP learning rates tried.
        public var learningRates: [Float]
        public var parameters: Int { ParameterLayout(config: model).count }
    }

    /// One run: what it was and what it measured.
    public struct Cell: Codable, Sendable {
        public var size: String
        /// `ddp`, `ddp-muon`, `diloco` (fp32, AdamW inside), `diloco-muon`, `diloco-int4-muon`, `diloco-topk-muon`.
        public var method: String
        public var workers: Int
        /// Global batch in sequences (all workers together, per step).
        public var globalBatch: Int
        public var steps: Int
        public var learningRate: Float
        public var innerSteps: Int?
        public var outerLearningRate: Float?
        public var outerMomentum: Float?
        /// The outer learning rate as a multiple of the rule's.
        public var outerFactor: Double?
        public var folder: String
        public var validationLoss: Double
        public var bytesSent: Int
        public var wallSeconds: Double
        public var tokens: Int
    }

    public struct Report: Codable, Sendable {
        public var quick: Bool
        public var steps: Int
        public var globalBatch: Int
        public var sequenceLength: Int
        public var innerSteps: Int
        public var sizes: [Size]
        public var cells: [Cell]
        public var wallSeconds: Double
    }

    public var sizes: [Size] {
        let small = Size(name: "small", model: GPTConfig(vocabSize: 4096, contextLength: 128, layers: 4, heads: 4, channels: 128),
                         learningRates: quick ? [0.002] : [0.001, 0.002, 0.004])
        let large = Size(name: "large", model: GPTConfig(vocabSize: 4096, contextLength: 128, layers: 6, heads: 8, channels: 256),
                         learningRates: [0.001, 0.002])
        return quick ? [small] : [small, large]
    }
    public var steps: Int { quick ? 200 : 400 }
    public let globalBatch = 16
    public let sequenceLength = 64
    public let innerSteps = 20
    public let workerCounts = [1, 2, 4, 8]
    /// Outer learning rates tried, as multiples of the rule's.
    public var outerFactors: [Double] { quick ? [1] : [0.67, 1, 1.5] }

    /// The shared base: the default corpus, sequences of 64, validation 4 times a run on 16
    /// batches, no checkpoints but the last, DiLoCo rounds of a step count.
    func baseConfig(log: (String) -> Void) throws -> TrainConfig {
        var (config, _) = try defaultLocalRun(runs: runs, log: log)
        config.sequenceLength = sequenceLength
        config.evaluation.batches = 16
        config.checkpoint.interval = 0
        config.checkpoint.keep = 1
        config.strategy.round = .steps
        config.strategy.innerSteps = innerSteps
        return config
    }

    public func run(folder: URL, isInterrupted: @escaping @Sendable () -> Bool,
                    events: @escaping @Sendable (LocalRunEvent) -> Void) async throws -> Report {
        let started = Date()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let base = try baseConfig { events(.notice($0)) }
        try base.yaml().write(to: folder.appendingPathComponent("experiment.yaml"), atomically: true, encoding: .utf8)
        var cells: [Cell] = []

        /// Runs one cell: `method` on `workers` workers, `batch` global sequences for `steps` steps.
        func run(_ size: Size, _ method: String, workers: Int, batch: Int, steps: Int, learningRate: Float,
                 outerFactor: Double? = nil) async throws -> Cell {
            var config = base
            config.model = size.model
            config.modelPreset = nil
            config.steps = steps
            config.batchSize = batch / workers
            config.evaluation.interval = steps / 4
            config.optimizer.learningRate = learningRate
            config.optimizer.name = method.hasSuffix("muon") ? .muon : .adamw
            config.strategy.name = method.hasPrefix("ddp") ? .ddp : .diloco
            config.strategy.codec = method.contains("int4") ? "int4" : method.contains("topk") ? "topk" : "fp32"
            var outer: OuterSettings?
            if config.strategy.name == .diloco {
                let rule = OuterSettings(strategy: config.strategy, workers: workers, rounds: (steps + innerSteps - 1) / innerSteps)
                outer = OuterSettings(learningRate: rule.learningRate * Float(outerFactor ?? 1), momentum: rule.momentum)
                config.strategy.outerLearningRate = outer!.learningRate
                config.strategy.outerMomentum = outer!.momentum
            }
            try config.validate()
            var options = LocalRunOptions(executable: executable)
            options.workers = workers
            options.speeds = Array(repeating: 1, count: workers)
            options.link = "unlimited"
            options.cpuShare = 1
            options.workerThreads = max(1, ProcessInfo.processInfo.activeProcessorCount / workers)
            let name = "\(size.name)-\(method)-m\(workers)-b\(batch)-lr\(learningRate)" + (outerFactor.map { "-outer\($0)" } ?? "")
            events(.notice("\n== \(name)"))
            let summary = try await LocalRun(options: options, config: config, folder: folder.appendingPathComponent(name),
                                             isInterrupted: isInterrupted, events: events).run()
            guard let loss = summary.validationLoss else { throw LocalRunError(reason: "\(name) ended without a validation loss") }
            let cell = Cell(size: size.name, method: method, workers: workers, globalBatch: batch, steps: steps, learningRate: learningRate,
                            innerSteps: outer == nil ? nil : innerSteps, outerLearningRate: outer?.learningRate,
                            outerMomentum: outer?.momentum, outerFactor: outerFactor, folder: name, validationLoss: loss,
                            bytesSent: summary.bytesSent, wallSeconds: summary.wallSeconds, tokens: summary.tokens)
            cells.append(cell)
            try writeExperimentReport(Report(quick: quick, steps: self.steps, globalBatch: globalBatch, sequenceLength: sequenceLength,
                                             innerSteps: innerSteps, sizes: sizes, cells: cells,
                                             wallSeconds: Date().timeIntervalSince(started)),
                                      markdown: "(in progress)\n", folder: folder)
            return cell
        }

        // The outer learning rate's best factor per M, from the small model's sweep of Muon-DiLoCo.
        var bestOuterFactor: [Int: Double] = [:]
        for (index, size) in sizes.enumerated() {
            let sweeping = index == 0 && !quick
            // DDP on two workers (the same gradient as one worker with the whole batch, on both cores).
            var ddp: [Cell] = []
            for lr in size.learningRates {
                ddp.append(try await run(size, "ddp", workers: 2, batch: globalBatch, steps: steps, learningRate: lr))
            }
            if sweeping {
                // DDP's batch at equal tokens, at its best learning rate.
                let lr = ddp.min { $0.validationLoss < $1.validationLoss }!.learningRate
                for (batch, batchSteps) in [(globalBatch / 2, steps * 2), (globalBatch * 2, steps / 2)] {
                    ddp.append(try await run(size, "ddp", workers: 2, batch: batch, steps: batchSteps, learningRate: lr))
                }
            }
            let best = ddp.min { $0.validationLoss < $1.validationLoss }!
            let lr = best.learningRate
            _ = try await run(size, "ddp-muon", workers: 2, batch: best.globalBatch, steps: best.steps, learningRate: lr)
            for m in workerCounts {
                var tried: [Cell] = []
                for factor in sweeping ? outerFactors : [bestOuterFactor[m] ?? 1] {
                    tried.append(try await run(size, "diloco-muon", workers: m, batch: globalBatch, steps: steps, learningRate: lr,
                                               outerFactor: factor))
                }
                if sweeping { bestOuterFactor[m] = tried.min { $0.validationLoss < $1.validationLoss }!.outerFactor }
            }
            // DiLoCo with AdamW inside (the rule's outer settings), and the compressed codecs with Muon.
            let variants: [(String, Int)] = index == 0
                ? [("diloco", 1), ("diloco", 2), ("diloco", 4), ("diloco", 8), ("diloco-int4-muon", 4), ("diloco-topk-muon", 4),
                   ("diloco-int4-muon", 8), ("diloco-topk-muon", 8)]
                : [("diloco", 4), ("diloco-int4-muon", 4), ("diloco-topk-muon", 4)]
            for (method, m) in variants {
                _ = try await run(size, method, workers: m, batch: globalBatch, steps: steps, learningRate: lr,
                                  outerFactor: method == "diloco" ? 1 : bestOuterFactor[m] ?? 1)
            }
        }
        let report = Report(quick: quick, steps: steps, globalBatch: globalBatch, sequenceLength: sequenceLength, innerSteps: innerSteps,
                            sizes: sizes, cells: cells, wallSeconds: Date().timeIntervalSince(started))
        let document = ScalingReport(report: report)
        for (name, svg) in document.plots() {
            try svg.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        try writeExperimentReport(report, markdown: document.markdown(), folder: folder)
        return report
    }
}
