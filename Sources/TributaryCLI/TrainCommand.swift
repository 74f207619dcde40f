import Basics
import ArgumentParser
import Dispatch
import Foundation
import Synchronization
import Training

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a GPT in this process and write a run folder (config.yaml, metrics.jsonl, checkpoints/)."
    )

    @Option(name: .long, help: "YAML training config; omitted fields take their defaults. With --resume, defaults to the checkpoint's config.")
    var config: String?

    @Option(name: .long, help: "Threads for matrix products and kernels (overrides the config).")
    var threads: Int?

    @Option(name: .long, help: "Optimizer steps (overrides the config).")
    var steps: Int?

    @Option(name: .long, help: "Folder under which the run folder is created.")
    var runs = "runs"

    @Option(name: .long, help: "Exact run folder to write (instead of a timestamped one under --runs).")
    var out: String?

    @Flag(name: .long, help: "Continue the run in --out (or the newest under --runs) from its newest valid checkpoint.")
    var resume = false

    func run() throws {
        try reportingErrors {
            let folder = try runFolder()
            var cfg = try resolvedConfig(folder: folder)
            if let threads { cfg.threads = threads }
            if let steps { cfg.steps = steps }
            try cfg.validate()
            // After the config checks, so that a bad config stays a one-line error.
            BLASCoreRestart.announce()
            let trainer = try Trainer(config: cfg)
            let store = CheckpointStore(directory: folder.appendingPathComponent("checkpoints"), keep: cfg.checkpoint.keep)
            var resumedStep: Int?
            if resume {
                let (loaded, refused) = store.restoreNewestValid(into: trainer)
                for (url, reason) in refused { printError("warning: skipped \(url.lastPathComponent): \(reason)") }
                guard let loaded else {
                    throw CheckpointError(path: store.directory.path, reason: "no usable checkpoint to resume from" + (refused.isEmpty ? "" : " (all refused, see above)"))
                }
                resumedStep = trainer.step
                print("resuming from \(loaded.lastPathComponent) (step \(trainer.step) of \(cfg.steps))")
            }
            let runDirectory = try RunDirectory(url: folder, config: cfg, resumingAfter: resumedStep)
            print("model \(cfg.modelPreset ?? "custom"): \(formatCount(Double(trainer.model.layout.count))) parameters, "
                + "batch \(cfg.batchSize)x\(cfg.sequenceLength)x\(cfg.gradientAccumulation), \(cfg.threads) threads")
            if let source = trainer.source {
                print("data: Markov source, \(cfg.data.markovVocabulary) symbols, entropy rate "
                    + String(format: "%.4f", source.entropyRate) + " nats/token")
            } else {
                print("data: prepared shards in \(cfg.data.prepared ?? "")")
            }
            print("run folder: \(folder.path)")
            let interrupt = InterruptFlag()
            let progress = ProgressLine(totalSteps: cfg.steps)
            let last = try trainer.run(runDirectory: runDirectory, checkpoints: store, shouldStop: { interrupt.isSet }) { progress.show($0) }
            if interrupt.isSet {
                print("\ninterrupted: checkpoint saved at step \(trainer.step); continue with --resume --out \(folder.path)")
                throw ExitCode(130)
            }
            if let last, let v = last.validationLoss {
                var line = "done: validation loss \(String(format: "%.4f", v))"
                if let source = trainer.source {
                    line += " (\(String(format: "%+.1f", (Double(v) / source.entropyRate - 1) * 100))% from the source's entropy rate)"
                }
                print(line + " in \(formatDuration(last.elapsedSeconds))")
            }
        }
    }

    /// The run folder: --out, or with --resume the newest under --runs, or a new timestamped one.
    private func runFolder() throws -> URL {
        if let out { return URL(fileURLWithPath: out) }
        let parent = URL(fileURLWithPath: runs)
        if resume {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? []).filter { $0.hasPrefix("train-") }
            guard let newest = names.sorted().last else {
                throw ValidationError("--resume found no run folder under \(parent.path); name one with --out")
            }
            return parent.appendingPathComponent(newest)
        }
        return RunDirectory.timestampedURL(under: parent, prefix: "train")
    }

    /// --config, else (resuming) the config the run folder recorded, else the defaults.
    private func resolvedConfig(folder: URL) throws -> TrainConfig {
        if let config { return try TrainConfig.load(contentsOf: URL(fileURLWithPath: config)) }
        if resume { return try TrainConfig.load(contentsOf: folder.appendingPathComponent("config.yaml")) }
        return TrainConfig()
    }
}
