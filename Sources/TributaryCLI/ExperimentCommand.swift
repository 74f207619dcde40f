import ArgumentParser
import Foundation
import Training

struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Reproducible comparisons that write a markdown report and SVG plots.",
        subcommands: [StrategiesExperimentCommand.self, PlannerExperimentCommand.self]
    )
}

/// DDP against DiLoCo variants on the same model, tokens, workers and links; then mixed speeds.
struct StrategiesExperimentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strategies",
        abstract: "DDP vs DiLoCo (H=20, H=100, H=100 int4, H=100 top-k) on 4 workers over 100 Mbit/s, 40 ms links; then DiLoCo H=100 int4 at speeds 1, 0.5, 0.25, 0.25."
    )

    @Option(help: "Optimizer steps per worker (the same tokens for every strategy).") var steps = 400
    @Option(help: "Workers.") var workers = 4
    @Option(help: "Emulated link of every worker.") var link = "100mbit,40ms"
    @Option(help: "Report folder (default: a new one under runs/).") var out: String?
    @Option(help: "Parent of the report folder and of the prepared corpus.") var runs = "runs"
    @Option(help: "Only these variants (comma-separated names from the report), for quick checks.") var only: String?
    @Flag(help: "Print the results as JSON.") var json = false

    struct Variant {
        var name: String
        var arguments: [String]
    }

    struct Result: Codable {
        var variant: String
        var summary: LocalSummary
    }

    struct Report: Codable {
        var steps: Int
        var workers: Int
        var link: String
        var results: [Result]
        var mixedSpeeds: Result?
        var aloneTokensPerSecond: [String: Double]
    }

    func run() async throws {
        let interrupt = InterruptFlag()
        do {
            let folder = out.map { URL(fileURLWithPath: $0) } ?? RunDirectory.timestampedURL(under: URL(fileURLWithPath: runs), prefix: "experiment-strategies")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let configURL = folder.appendingPathComponent("experiment.yaml")
            // The default local model and corpus, evaluated every 50 steps; DiLoCo rounds end
            // after a step count here so that every variant trains on the same tokens.
            let base = defaultLocalConfig.replacingOccurrences(of: "steps: 600", with: "steps: \(steps)")
                .replacingOccurrences(of: "sequenceLength: 128", with: "sequenceLength: 64")
                .replacingOccurrences(of: "evaluation: {interval: 100, batches: 8}", with: "evaluation: {interval: 50, batches: 16}")
                .replacingOccurrences(of: "checkpoint: {interval: 200, keep: 2}", with: "checkpoint: {interval: 0, keep: 1}")
                .replacingOccurrences(of: "round: time", with: "round: steps")
            let data = URL(fileURLWithPath: runs).appendingPathComponent("fortunes-data")
            _ = try prepareDefaultCorpus(corpus: LocalCommand.defaultCorpus, into: data, vocabulary: 4096)
            let yaml = base + "\ndata: {prepared: \"\(data.path)\"}\n"
            try yaml.write(to: configURL, atomically: true, encoding: .utf8)
            let equal = ["--speeds", "1", "--link", link, "--workers", "\(workers)"]
            var variants = [
                Variant(name: "ddp", arguments: ["--strategy", "ddp", "--codec", "fp32"] + equal),
                Variant(name: "diloco-h20", arguments: ["--strategy", "diloco", "--codec", "fp32", "--inner-steps", "20"] + equal),
                Variant(name: "diloco-h20-overlap", arguments: ["--strategy", "diloco", "--codec", "fp32", "--inner-steps", "20", "--overlap"] + equal),
                Variant(name: "diloco-h100", arguments: ["--strategy", "diloco", "--codec", "fp32", "--inner-steps", "100"] + equal),
                Variant(name: "diloco-h100-int4", arguments: ["--strategy", "diloco", "--codec", "int4", "--inner-steps", "100"] + equal),
                // SparseLoCo's recipe for top-k: plain outer SGD and a decaying error-feedback residual.
                Variant(name: "diloco-h100-topk", arguments: ["--strategy", "diloco", "--codec", "topk", "--inner-steps", "100",
                                                              "--outer-lr", "1", "--outer-momentum", "0", "--error-feedback", "0.95"] + equal),
                Variant(name: "diloco-h20-topk", arguments: ["--strategy", "diloco", "--codec", "topk", "--inner-steps", "20",
                                                             "--outer-lr", "1", "--outer-momentum", "0", "--error-feedback", "0.95"] + equal),
            ]
            let mixed = Variant(name: "mixed-speeds", arguments: ["--strategy", "diloco", "--codec", "int4", "--inner-steps", "100", "--round", "time",
                                                                  "--speeds", "1,0.5,0.25,0.25", "--link", link, "--workers", "4"])
            var wanted = only.map { Set($0.split(separator: ",").map(String.init)) }
            if wanted != nil, wanted!.contains("mixed-speeds") { wanted!.insert("alone") }
            variants = variants.filter { wanted?.contains($0.name) ?? true }

            let common = ["--config", configURL.path, "--runs", runs]
            var report = Report(steps: steps, workers: workers, link: link, results: [], mixedSpeeds: nil, aloneTokensPerSecond: [:])
            func runVariant(_ v: Variant) async throws -> LocalSummary {
                print("\n== \(v.name): tributary local \(v.arguments.joined(separator: " "))")
                let command = try LocalCommand.parse(common + v.arguments + ["--out", folder.appendingPathComponent(v.name).path])
                return try await command.execute(interrupt: interrupt).0
            }
            for v in variants {
                report.results.append(Result(variant: v.name, summary: try await runVariant(v)))
            }
            if wanted?.contains("mixed-speeds") ?? true {
                let summary = try await runVariant(mixed)
                report.mixedSpeeds = Result(variant: mixed.name, summary: summary)
                // Each worker's speed alone: one worker at the same emulated speed, same data.
                for speed in Set(summary.workers.map(\.speed)).sorted() {
                    let alone = Variant(name: "alone-\(String(format: "%.3f", speed))",
                                        arguments: ["--strategy", "diloco", "--codec", "fp32", "--inner-steps", "100", "--round", "steps",
                                                    "--workers", "1", "--speeds", "1", "--throttles", "\(speed)", "--link", link, "--steps", "100"])
                    report.aloneTokensPerSecond[String(format: "%.3f", speed)] = try await runVariant(alone).tokensPerSecond
                }
            }
            for (name, svg) in StrategiesReport(report: report).plots(folder: folder) {
                try svg.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
            }
            try writeExperimentReport(report, markdown: StrategiesReport(report: report).markdown(), folder: folder, json: json)
        } catch let error as ExitCode {
            throw error
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }
}

/// Writes an experiment's `report.md` and `results.json` into its folder, then prints the JSON
/// or the markdown.
func writeExperimentReport(_ report: some Encodable, markdown: String, folder: URL, json: Bool) throws {
    try markdown.write(to: folder.appendingPathComponent("report.md"), atomically: true, encoding: .utf8)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    let data = try encoder.encode(report)
    try data.write(to: folder.appendingPathComponent("results.json"))
    if json {
        print(String(decoding: data, as: UTF8.self))
    } else {
        print("\n" + markdown)
        print("report: \(folder.appendingPathComponent("report.md").path)")
    }
}
