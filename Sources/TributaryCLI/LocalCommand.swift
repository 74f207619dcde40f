import ArgumentParser
import Basics
import ClusterRuns
import Coordination
import Dispatch
import Foundation
import Logging
import ModelCore
import Strategies
import TensorCore
import Training
import Transport

struct LocalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "local",
        abstract: "Train with a coordinator and several worker processes on this machine, each with its own speed and link."
    )

    @Option(help: "Worker processes (default 4; with --resume, the run's own).") var workers: Int?
    @Option(help: "Training config (YAML); default: a small GPT on the fortunes corpus, prepared on first use.") var config: String?
    @Option(help: "ddp or diloco (overrides the config).") var strategy: String?
    @Option(help: "Wire codec: fp32, fp16, bf16, int8, int4, topk (overrides the config).") var codec: String?
    @Option(help: "DiLoCo inner steps per round (overrides the config).") var innerSteps: Int?
    @Option(help: "DiLoCo rounds end after a step count or a time budget: steps or time (overrides the config).") var round: String?
    @Option(help: "Optimizer steps (overrides the config).") var steps: Int?
    @Option(help: "Sequences per step of each worker (overrides the config).") var batchSize: Int?
    @Option(help: "Inner optimizer: adamw or muon (overrides the config; on the default config, with its learning rate).")
    var optimizer: String?
    @Option(help: "Peak learning rate of the inner optimizer (overrides the config).") var learningRate: Float?
    @Option(help: "DiLoCo outer learning rate (overrides the config).") var outerLr: Float?
    @Option(help: "DiLoCo outer Nesterov momentum; 0 is plain outer SGD (overrides the config).") var outerMomentum: Float?
    @Option(help: "Decay of the error-feedback residual of lossy codecs (overrides the config).") var errorFeedback: Float?
    @Flag(help: "DiLoCo: overlap each round's all-reduce with the next round's inner steps (overrides the config).") var overlap = false
    @Option(help: "DiLoCo: average the inner optimizer's moments over workers every N rounds; 0 never (overrides the config).")
    var momentSync: Int?
    @Option(help: "DiLoCo streaming: each round sends one of F interleaved fragments of the model (overrides the config).")
    var fragments: Int?
    @Option(help: "DiLoCo with overlap: rounds a background sum has to land, 1 or 2 (sets --overlap; overrides the config).")
    var overlapRounds: Int?
    @Option(help: "Relative worker speeds, comma-separated, one per worker or one for all (default 1,1,0.5,0.5; with --resume, the run's own).")
    var speeds: String?
    @Option(help: "Emulated link of every worker, e.g. 100mbit,40ms or unlimited (default 100mbit,40ms; with --resume, the run's own).")
    var link: String?
    @Option(help: ArgumentHelp("Emulated speeds as fractions of one core, taken as they are (for measurements).", visibility: .hidden))
    var throttles: String?
    @Option(help: "Share of this machine's cores the fastest workers may use together, so that emulated speeds are not distorted by contention (default 0.7).")
    var cpuShare: Double?
    @Option(help: "Text corpus for the default config.") var corpus = defaultCorpus
    @Option(help: "Run folder (default: a new one under --runs).") var out: String?
    @Option(help: "Seconds without a heartbeat after which a worker counts as lost; the others go back to the last round they all completed and go on without it (default 6).")
    var heartbeatTimeout: Double?
    @Option(help: "Continue the run in this folder from the newest state its workers saved (its config; --workers may differ).") var resume: String?
    @Option(help: "Parent of new run folders and of the prepared default corpus.") var runs = "runs"
    @Option(help: "Spoil one worker's contribution on purpose, to see the update guard: N:nan@ROUND or N:scale=FACTOR@ROUND (worker N, from 0).")
    var injectFault: [String] = []
    @Option(help: "Prompt of the sample printed at the end.") var prompt = "The"
    @Flag(help: "Print the summary as JSON.") var json = false
    @Flag(help: "Plain HTTP and TCP instead of TLS with the run's own certificates: for benchmarks only, anyone on the network can read and join.")
    var insecure = false

    func validate() throws {
        if let workers, !(1...32).contains(workers) { throw ValidationError("--workers must be in 1...32") }
        if let cpuShare, !(cpuShare > 0 && cpuShare <= 1) { throw ValidationError("--cpu-share must be in (0, 1]") }
        if let heartbeatTimeout, !(0.5...3600).contains(heartbeatTimeout) {
            throw ValidationError("--heartbeat-timeout must be in 0.5...3600 seconds")
        }
        if resume != nil, config != nil || out != nil {
            throw ValidationError("--resume takes the run's own folder and config; drop --config and --out")
        }
        if let link { _ = try LinkSpec(parsing: link) }
        if resume == nil { _ = try options() }
    }

    /// `--speeds` for `workers` workers.
    static func parseSpeeds(_ text: String, workers: Int) throws -> [Double] {
        let values = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil && $0! > 0 && $0!.isFinite }) else {
            throw ValidationError("--speeds must be positive numbers separated by commas, got '\(text)'")
        }
        if values.count == 1 { return Array(repeating: values[0]!, count: workers) }
        guard values.count == workers else { throw ValidationError("--speeds lists \(values.count) speeds for \(workers) workers") }
        return values.map { $0! }
    }

    func run() async throws {
        BLASCoreRestart.announce()
        let interrupt = InterruptFlag()
        try await reportingErrors {
            let options = try options()
            if let resume { try checkResumable(URL(fileURLWithPath: resume), workers: options.workers) }
            let folder = (resume ?? out).map { URL(fileURLWithPath: $0) }
                ?? RunDirectory.timestampedURL(under: URL(fileURLWithPath: runs), prefix: "local")
            let (config, tokenizer) = try resolveConfig()
            let progress = ProgressOnStandardError()
            defer { progress.finish() }
            let run = LocalRun(options: options, config: config, folder: folder, isInterrupted: { interrupt.isSet }) { progress.show($0) }
            let summary: LocalSummary
            do { summary = try await run.run() } catch is CancellationError where interrupt.isSet {
                printError("\ninterrupted; workers stopped. Checkpoints so far are in \(folder.appendingPathComponent("checkpoints").path)")
                throw ExitCode(130)
            }
            progress.finish()
            if json {
                try printJSON(summary)
            } else {
                print(summary.table)
                if let tokenizer { try printSample(folder: folder, tokenizer: tokenizer) }
            }
        }
    }

    /// How the workers run: the flags given, else (resuming) the run's own layout, else the defaults.
    func options() throws -> LocalRunOptions {
        var options = LocalRunOptions(executable: Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0]))
        if let resume, let saved = try LocalTopology.saved(in: URL(fileURLWithPath: resume)) { options.topology = saved }
        if let workers, workers != options.workers {
            options.workers = workers
            // The saved per-worker figures were for another count of workers.
            options.throttles = nil
            if speeds == nil, Set(options.speeds).count == 1 { options.speeds = Array(repeating: options.speeds[0], count: workers) }
        }
        if let speeds { options.speeds = try Self.parseSpeeds(speeds, workers: options.workers) }
        guard options.speeds.count == options.workers else {
            throw ValidationError("\(options.speeds.count) speeds for \(options.workers) workers; give --speeds")
        }
        if let link { options.link = link }
        if let cpuShare { options.cpuShare = cpuShare }
        if let heartbeatTimeout { options.heartbeatTimeout = heartbeatTimeout }
        for fault in injectFault {
            let parts = fault.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let index = Int(parts[0]), (0..<options.workers).contains(index) else {
                throw ValidationError("--inject-fault \(fault): expected N:nan@ROUND or N:scale=FACTOR@ROUND with N a worker from 0 to \(options.workers - 1)")
            }
            _ = try FaultInjection(parsing: String(parts[1]))
            options.faults[index] = String(parts[1])
        }
        if let throttles { options.throttles = throttles.split(separator: ",").map { Double($0) ?? .nan } }
        options.resume = resume != nil
        options.insecure = insecure
        return options
    }

    /// A run folder can be resumed when its workers saved state; more workers take over the
    /// state of the first, fewer leave the missing ones' data out.
    private func checkResumable(_ folder: URL, workers: Int) throws {
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("config.yaml").path) else {
            throw ValidationError("\(folder.path) is not a multi-worker run folder (no config.yaml)")
        }
        let states = folder.appendingPathComponent("checkpoints/workers")
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: states.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        guard !names.isEmpty else {
            throw ValidationError("nothing to resume in \(folder.path): no worker saved its state (checkpoint.interval > 0 saves it as the run goes)")
        }
        if names.count != workers {
            printError("resuming \(names.count) workers' state with \(workers): "
                + (workers > names.count ? "the new ones start from the first worker's model and optimizer state"
                                         : "the data shares of the others are left out"))
        }
    }

    /// The config with the flags applied, and the tokenizer its data was prepared with.
    private func resolveConfig() throws -> (TrainConfig, URL?) {
        var cfg: TrainConfig
        var tokenizer: URL?
        if let resume {
            cfg = try TrainConfig.load(contentsOf: URL(fileURLWithPath: resume).appendingPathComponent("config.yaml"))
        } else if let config {
            cfg = try TrainConfig.load(contentsOf: URL(fileURLWithPath: config))
        } else {
            (cfg, tokenizer) = try defaultLocalRun(corpus: corpus, runs: URL(fileURLWithPath: runs), log: printError)
        }
        if let prepared = cfg.data.prepared {
            let copy = URL(fileURLWithPath: prepared).appendingPathComponent(DataPreparation.tokenizerFile)
            if tokenizer == nil, FileManager.default.fileExists(atPath: copy.path) { tokenizer = copy }
        }
        if let strategy {
            guard let name = StrategyConfig.Name(rawValue: strategy) else { throw ValidationError("--strategy must be ddp or diloco") }
            cfg.strategy.name = name
        }
        if let round {
            guard let kind = StrategyConfig.RoundKind(rawValue: round) else { throw ValidationError("--round must be steps or time") }
            cfg.strategy.round = kind
        }
        if let codec { cfg.strategy.codec = codec }
        if let innerSteps { cfg.strategy.innerSteps = innerSteps }
        if let steps { cfg.steps = steps }
        if let batchSize { cfg.batchSize = batchSize }
        if let optimizer {
            guard let name = OptimizerConfig.Name(rawValue: optimizer) else { throw ValidationError("--optimizer must be adamw or muon") }
            cfg.optimizer.name = name
            if config == nil && resume == nil { cfg.optimizer.learningRate = defaultLearningRate(name) }
        }
        if let learningRate { cfg.optimizer.learningRate = learningRate }
        if let outerLr { cfg.strategy.outerLearningRate = outerLr }
        if let outerMomentum { cfg.strategy.outerMomentum = outerMomentum }
        if let errorFeedback { cfg.strategy.errorFeedback = errorFeedback }
        if overlap { cfg.strategy.overlap = true }
        if let momentSync { cfg.strategy.momentSync = momentSync }
        if let fragments { cfg.strategy.fragments = fragments }
        if let overlapRounds {
            cfg.strategy.overlap = true
            cfg.strategy.overlapRounds = overlapRounds
        }
        cfg.threads = 1
        try cfg.validate()
        try checkCodec(cfg)
        return (cfg, tokenizer)
    }

    /// Prints text sampled from the run's final checkpoint.
    private func printSample(folder: URL, tokenizer: URL) throws {
        let checkpoint = try checkpointFolder(folder.path)
        let (model, _) = try CheckpointStore.loadModel(from: checkpoint, parallelism: Parallelism(threads: UsableCores.count))
        let bpe = try ByteLevelBPE(contentsOf: tokenizer)
        let (tokens, _, seconds) = try sampleTokens(model: model, prompt: bpe.encode(prompt), maxTokens: 60,
                                                    options: SamplingOptions(temperature: 0.8, topK: 40, topP: 1), seed: 7)
        print("\nsample (60 tokens at \(formatCount(Double(tokens.count) / seconds)) tokens/s, temperature 0.8, top-k 40):")
        print(prompt + bpe.decode(tokens))
        print("\nmore: tributary generate --checkpoint \(folder.path) --prompt \"...\"; export: tributary export --format hf --checkpoint \(folder.path) OUT")
    }
}

extension ProgressOnStandardError {
    /// Shows a local run's events.
    func show(_ event: LocalRunEvent) {
        switch event {
        case let .notice(line): notice(line)
        case let .progress(line, round): show(line, step: round)
        }
    }
}
