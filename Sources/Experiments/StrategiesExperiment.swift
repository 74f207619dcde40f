import Basics
import ClusterRuns
import Foundation
import Training

/// DDP against DiLoCo variants on the same model, tokens, workers and links; then mixed speeds.
/// Every variant is a config and run options built as values from the default local run.
public struct StrategiesExperiment {
    /// Optimizer steps per worker (the same tokens for every strategy).
    public var steps = 400
    public var workers = 4
    /// Emulated link of every worker.
    public var link = "100mbit,40ms"
    /// Only these variants (names from the report); nil runs them all.
    public var only: Set<String>?
    /// Parent of the prepared corpus.
    public var runs: URL
    /// The `tributary` binary the workers run.
    public var executable: URL

    public init(runs: URL, executable: URL) {
        self.runs = runs
        self.executable = executable
    }

    /// One run of the experiment: what it changes in the base config and run options.
    public struct Variant: Sendable {
        public var name: String
        public var strategy = StrategyConfig.Name.diloco
        public var codec = "fp32"
        public var innerSteps: Int?
        public var round = StrategyConfig.RoundKind.steps
        public var outerLearningRate: Float?
        public var outerMomentum: Float?
        public var errorFeedback: Float?
        public var overlap = false
        public var steps: Int?
        public var workers: Int?
        public var speeds: [Double]?
        public var throttles: [Double]?

        /// The same run as `tributary local` flags, for the report and for rerunning by hand.
        public var commandLine: String {
            var flags = ["--strategy", strategy.rawValue, "--codec", codec, "--round", round.rawValue]
            if let innerSteps { flags += ["--inner-steps", "\(innerSteps)"] }
            if let outerLearningRate { flags += ["--outer-lr", "\(outerLearningRate)"] }
            if let outerMomentum { flags += ["--outer-momentum", "\(outerMomentum)"] }
            if let errorFeedback { flags += ["--error-feedback", "\(errorFeedback)"] }
            if overlap { flags.append("--overlap") }
            if let steps { flags += ["--steps", "\(steps)"] }
            if let workers { flags += ["--workers", "\(workers)"] }
            if let speeds { flags += ["--speeds", speeds.map { "\($0)" }.joined(separator: ",")] }
            if let throttles { flags += ["--throttles", throttles.map { "\($0)" }.joined(separator: ",")] }
            return "tributary local " + flags.joined(separator: " ")
        }

        public func apply(to config: inout TrainConfig, _ options: inout LocalRunOptions) {
            config.strategy.name = strategy
            config.strategy.codec = codec
            config.strategy.round = round
            if let innerSteps { config.strategy.innerSteps = innerSteps }
            if let outerLearningRate { config.strategy.outerLearningRate = outerLearningRate }
            if let outerMomentum { config.strategy.outerMomentum = outerMomentum }
            if let errorFeedback { config.strategy.errorFeedback = errorFeedback }
            config.strategy.overlap = overlap
            if let steps { config.steps = steps }
            if let workers { options.workers = workers }
            options.speeds = speeds ?? Array(repeating: 1, count: options.workers)
            options.throttles = throttles
        }
    }

    /// The variants at equal speeds, in report order.
    public static let variants: [Variant] = [
        Variant(name: "ddp", strategy: .ddp),
        Variant(name: "diloco-h20", innerSteps: 20),
        Variant(name: "diloco-h20-overlap", innerSteps: 20, overlap: true),
        Variant(name: "diloco-h100", innerSteps: 100),
        Variant(name: "diloco-h100-int4", codec: "int4", innerSteps: 100),
        // SparseLoCo's recipe for top-k: plain outer SGD and a decaying error-feedback residual.
        Variant(name: "diloco-h100-topk", codec: "topk", innerSteps: 100, outerLearningRate: 1, outerMomentum: 0, errorFeedback: 0.95),
        Variant(name: "diloco-h20-topk", codec: "topk", innerSteps: 20, outerLearningRate: 1, outerMomentum: 0, errorFeedback: 0.95),
    ]

    /// DiLoCo H=100 int4 with time rounds at speeds 1, 0.5, 0.25, 0.25.
    public static let mixedSpeeds = Variant(name: "mixed-speeds", codec: "int4", innerSteps: 100, round: .time, workers: 4,
                                            speeds: [1, 0.5, 0.25, 0.25])

    public struct Result: Codable, Sendable {
        public var variant: String
        public var summary: LocalSummary
    }

    public struct Report: Codable, Sendable {
        public var steps: Int
        public var workers: Int
        public var link: String
        public var results: [Result]
        public var mixedSpeeds: Result?
        public var aloneTokensPerSecond: [String: Double]
    }

    /// The base config: the default local model and corpus with `steps`, sequences of 64,
    /// validation every 50 steps on 16 batches, no checkpoints, DiLoCo rounds of a step count
    /// (so that every variant trains on the same tokens).
    public func baseConfig(log: (String) -> Void) throws -> TrainConfig {
        var (config, _) = try defaultLocalRun(runs: runs, log: log)
        config.steps = steps
        config.sequenceLength = 64
        config.evaluation.interval = 50
        config.evaluation.batches = 16
        config.checkpoint.interval = 0
        config.checkpoint.keep = 1
        config.strategy.round = .steps
        try config.validate()
        return config
    }

    /// Runs every variant into `folder` (one run folder each, `experiment.yaml` the base config).
    public func run(folder: URL, isInterrupted: @escaping @Sendable () -> Bool,
                    events: @escaping @Sendable (LocalRunEvent) -> Void) async throws -> Report {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let base = try baseConfig { events(.notice($0)) }
        try base.yaml().write(to: folder.appendingPathComponent("experiment.yaml"), atomically: true, encoding: .utf8)
        var wanted = only
        if wanted?.contains("mixed-speeds") == true { wanted!.insert("alone") }

        func run(_ v: Variant) async throws -> LocalSummary {
            var config = base
            var options = LocalRunOptions(executable: executable)
            options.workers = workers
            options.link = link
            v.apply(to: &config, &options)
            events(.notice("\n== \(v.name): \(v.commandLine) --link \(link)"))
            return try await LocalRun(options: options, config: config, folder: folder.appendingPathComponent(v.name),
                                      isInterrupted: isInterrupted, events: events).run()
        }
        var report = Report(steps: steps, workers: workers, link: link, results: [], mixedSpeeds: nil, aloneTokensPerSecond: [:])
        for v in Self.variants where wanted?.contains(v.name) ?? true {
            report.results.append(Result(variant: v.name, summary: try await run(v)))
        }
        if wanted?.contains("mixed-speeds") ?? true {
            let summary = try await run(Self.mixedSpeeds)
            report.mixedSpeeds = Result(variant: Self.mixedSpeeds.name, summary: summary)
            // Each worker's speed alone: one worker at the same emulated speed, same data.
            for speed in Set(summary.workers.map(\.speed)).sorted() {
                let alone = Variant(name: "alone-\(String(format: "%.3f", speed))", innerSteps: 100, steps: 100, workers: 1, speeds: [1],
                                    throttles: [speed])
                report.aloneTokensPerSecond[String(format: "%.3f", speed)] = try await run(alone).tokensPerSecond
            }
        }
        let charts = StrategiesReport(report: report)
        for (name, svg) in charts.plots(folder: folder) {
            try svg.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        try writeExperimentReport(report, markdown: charts.markdown(), folder: folder)
        return report
    }
}

/// Writes an experiment's `report.md` and `results.json` into its folder.
public func writeExperimentReport(_ report: some Encodable, markdown: String, folder: URL) throws {
    try markdown.write(to: folder.appendingPathComponent("report.md"), atomically: true, encoding: .utf8)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(report).write(to: folder.appendingPathComponent("results.json"))
}
