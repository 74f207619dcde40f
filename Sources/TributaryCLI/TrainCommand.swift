import ArgumentParser
import Foundation
import Training

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a GPT in this process and write a run folder (config.yaml, metrics.jsonl)."
    )

    @Option(name: .long, help: "YAML training config; omitted fields take their defaults.")
    var config: String?

    @Option(name: .long, help: "Threads for matrix products and kernels (overrides the config).")
    var threads: Int?

    @Option(name: .long, help: "Optimizer steps (overrides the config).")
    var steps: Int?

    @Option(name: .long, help: "Folder under which the run folder is created.")
    var runs = "runs"

    @Option(name: .long, help: "Exact run folder to write (instead of a timestamped one under --runs).")
    var out: String?

    func run() throws {
        try reportingErrors {
            var cfg = try config.map { try TrainConfig.load(contentsOf: URL(fileURLWithPath: $0)) } ?? TrainConfig()
            if let threads { cfg.threads = threads }
            if let steps { cfg.steps = steps }
            try cfg.validate()
            let folder = out.map { URL(fileURLWithPath: $0) }
                ?? RunDirectory.timestampedURL(under: URL(fileURLWithPath: runs), prefix: "train")
            let runDirectory = try RunDirectory(url: folder, config: cfg)
            let trainer = try Trainer(config: cfg)
            let params = trainer.model.layout.count
            print("model \(cfg.modelPreset ?? "custom"): \(formatCount(Double(params))) parameters, "
                + "batch \(cfg.batchSize)x\(cfg.sequenceLength)x\(cfg.gradientAccumulation), \(cfg.threads) threads")
            print("data: Markov source, \(cfg.data.markovVocabulary) symbols, entropy rate "
                + String(format: "%.4f", trainer.source.entropyRate) + " nats/token")
            print("run folder: \(folder.path)")
            let progress = ProgressLine(totalSteps: cfg.steps)
            let last = try trainer.run(runDirectory: runDirectory) { progress.show($0) }
            if let last, let v = last.validationLoss {
                let gap = (Double(v) / trainer.source.entropyRate - 1) * 100
                print("done: validation loss \(String(format: "%.4f", v)) "
                    + "(\(String(format: "%+.1f", gap))% from the source's entropy rate) in \(formatDuration(last.elapsedSeconds))")
            }
        }
    }
}
