import ArgumentParser
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print figures and ratios against baselines measured in the same run.",
        subcommands: [EngineBenchCommand.self, CodecBenchCommand.self]
    )
}

struct EngineBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "sgemm GFLOP/s, then ms per training step, tokens/s and model FLOPs for GPT configs."
    )

    @Flag(name: .long, help: "Print one JSON object instead of a table.")
    var json = false

    @Option(name: .long, help: "Threads for BLAS and kernels.")
    var threads = 2

    @Option(name: .long, help: "Timed training steps per config (after one warm-up step).")
    var steps = 3

    @Option(name: .long, parsing: .upToNextOption, help: "Configs to run (default: all). Names: \(EngineBenchmark.cases.map(\.name).joined(separator: ", ")).")
    var only: [String] = []

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        guard (1...1000).contains(steps) else { throw ValidationError("--steps must be in 1...1000, got \(steps)") }
        let names = EngineBenchmark.cases.map(\.name)
        for name in only where !names.contains(name) {
            throw ValidationError("unknown config '\(name)'; known: \(names.joined(separator: ", "))")
        }
    }

    func run() throws {
        try reportingErrors {
            let cases = only.isEmpty ? EngineBenchmark.cases : EngineBenchmark.cases.filter { only.contains($0.name) }
            let bench = EngineBenchmark(threads: threads, steps: steps)
            let report = try bench.run(cases: cases, log: json ? { _ in } : { print($0); fflush(nil) })
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            }
        }
    }
}

struct CodecBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codecs",
        abstract: "Encode/decode throughput (one thread) and error of every wire codec, against memcpy."
    )

    @Flag(name: .long, help: "Print one JSON object instead of a table.")
    var json = false

    @Option(name: .long, help: "Vector size in MB of fp32 (1...1024).")
    var size = 64

    func validate() throws {
        guard (1...1024).contains(size) else { throw ValidationError("--size must be in 1...1024 (MB), got \(size)") }
    }

    func run() throws {
        try reportingErrors {
            let report = try CodecBenchmark(values: size << 18).run(log: json ? { _ in } : { print($0) })
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            }
        }
    }
}
