import Basics
import Benchmarks
import ArgumentParser
import Transport
import Wire
import Dispatch
import Foundation
import Planner
import RunTrust
import Training

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print figures and ratios against baselines measured in the same run.",
        subcommands: [EngineBenchCommand.self, EngineLinkBenchCommand.self, CodecBenchCommand.self, AllReduceBenchCommand.self,
                      TokenizerBenchCommand.self]
    )
}

struct EngineBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "sgemm GFLOP/s, then ms per training step, tokens/s and model FLOPs for GPT configs."
    )

    @Flag(name: .long, help: "Print one JSON object instead of a table.")
    var json = false

    @Option(name: .long, help: "Threads for BLAS and kernels (default: the cores this process may use).")
    var threads = UsableCores.count

    @Option(name: .long, help: "Timed training steps per config (after one warm-up step).")
    var steps = 3

    @Option(name: .long, parsing: .upToNextOption, help: "Configs to run (default: all). Names: \(EngineBenchmark.cases.map(\.name).joined(separator: ", ")).")
    var only: [String] = []

    @Option(name: .long, help: "Also write this CPU, calibrated on these steps, as a planner device file (for plan --devices).")
    var calibration: String?

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1, got \(threads)") }
        guard (1...1000).contains(steps) else { throw ValidationError("--steps must be in 1...1000, got \(steps)") }
        let names = EngineBenchmark.cases.map(\.name)
        for name in only where !names.contains(name) {
            throw ValidationError("unknown config '\(name)'; known: \(names.joined(separator: ", "))")
        }
    }

    func run() throws {
        BLASCoreRestart.announce()
        try reportingErrors {
            let cases = only.isEmpty ? EngineBenchmark.cases : EngineBenchmark.cases.filter { only.contains($0.name) }
            let log: (String) -> Void = json ? { _ in } : { print($0); fflush(nil) }
            if let calibration {
                let measured = try CPUCalibration.measure(threads: threads, steps: steps, cases: cases, log: log)
                let device = measured.device(name: "local-cpu")
                try DeviceCatalogue(devices: [device]).yaml().write(toFile: calibration, atomically: true, encoding: .utf8)
                if json { try printJSON(measured) } else {
                    print(String(format: "\nlocal-cpu for the planner: %.1f GFLOP/s sgemm × achievable %.2f (full steps), narrow-matrix width %.0f, %.1f GB/s → %@",
                                 measured.sgemmGFLOPs, measured.achievable, measured.narrowMatrixWidth, measured.memoryBandwidthGBs, calibration))
                }
                return
            }
            let report = try EngineBenchmark(threads: threads, steps: steps).run(cases: cases, log: log)
            if json { try printJSON(report) }
        }
    }
}

struct EngineLinkBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine-link",
        abstract: "The engine link's cost per DiLoCo round (a Python engine that trains nothing) against a native round."
    )

    @Option(help: "Run config whose model, batch and inner steps to use.") var config = "configs/fortunes-mixed.yaml"
    @Option(help: "Timed rounds (after one that includes the engine's start-up).") var rounds = 20
    @Flag(help: "Copy into a PyTorch GPT-2 and back each round, as the PyTorch helper does (needs torch, transformers).")
    var torch = false
    @Option(help: "The Python package's folder.") var package = "python"
    @Flag(help: "Print one JSON object instead of lines.") var json = false

    func run() async throws {
        try await reportingErrors {
            guard (1...10_000).contains(rounds) else { throw ValidationError("--rounds must be in 1...10000, got \(rounds)") }
            let cfg = try TrainConfig.load(contentsOf: URL(fileURLWithPath: config))
            let benchmark = EngineLinkBenchmark(config: cfg, rounds: rounds, package: URL(fileURLWithPath: package), torch: torch)
            let report = try await benchmark.run(log: json ? { _ in } : { print($0); fflush(nil) })
            if json { try printJSON(report) }
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
            if json { try printJSON(report) }
        }
    }
}

struct AllReduceBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "Ring all-reduce across worker processes on loopback, each link emulated; goodput against the link rate."
    )

    @Option(name: .long, help: "Worker processes (2...16).")
    var workers = 4

    @Option(name: .long, help: "Vector size, e.g. 50MB (of fp32 values).")
    var size = "50MB"

    @Option(name: .long, help: "Link of every worker, RATE[,DELAY], e.g. 100mbit,40ms.")
    var link = "100mbit,40ms"

    @Option(name: .long, help: "Codecs to compare, comma-separated (fp32, fp16, bf16, int8, int4, topk...).")
    var codec = "fp32,int8"

    @Option(name: .long, help: "All-reduce rounds per codec (the median is reported).")
    var rounds = 1

    @Flag(name: .long, help: "Print one JSON object instead of a table.")
    var json = false

    @Option(name: .long, help: "Link security to compare, comma-separated: tls (mutual TLS, what runs use) and plain (--insecure).")
    var security = "tls"

    @Flag(name: .long, help: "Also hand the vector straight from rank 0 to the last rank, as a newcomer takes a worker's state, against the all-reduce of it.")
    var handOff = false

    @Flag(name: .long, help: "Shape for real: one network namespace per worker, veth links limited by tc tbf (root only); the delay stays emulated in-process.")
    var netns = false

    struct Row: Codable {
        let codec: String
        let security: String
        let seconds: Double
        let bytesSentPerWorker: Int
        let goodputBytesPerSecond: Double
        let fractionOfLink: Double?
        let speedupOverFirst: Double
        let relativeRMSError: Double
        let workersAgree: Bool
        /// CPU seconds per GB a worker sent (its whole process: codec, framing, TLS, sockets).
        let cpuSecondsPerGB: Double?
        /// With --hand-off: seconds and bytes of the direct hand-off from rank 0 to the last rank.
        var handOffSeconds: Double?
        var handOffBytes: Int?
    }

    func parsedValues() throws -> Int {
        let text = size.uppercased()
        let units: [(String, Double)] = [("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("B", 1)]
        guard let (suffix, scale) = units.first(where: { text.hasSuffix($0.0) }), let n = Double(text.dropLast(suffix.count)),
              n > 0, n * scale <= 4e9
        else { throw ValidationError("--size must look like 50MB (at most 4GB), got \(size)") }
        return Int(n * scale / 4)
    }

    func validate() throws {
        guard (2...16).contains(workers) else { throw ValidationError("--workers must be in 2...16, got \(workers)") }
        guard (1...20).contains(rounds) else { throw ValidationError("--rounds must be in 1...20, got \(rounds)") }
        _ = try parsedValues()
        for name in security.split(separator: ",") where !["tls", "plain"].contains(name) {
            throw ValidationError("unknown --security '\(name)'; use tls, plain or tls,plain")
        }
        do { _ = try LinkSpec(parsing: link) } catch { throw ValidationError("\(error)") }
        for name in codec.split(separator: ",") where CodecID(name: String(name)) == nil {
            throw ValidationError("unknown codec '\(name)'; try fp32, fp16, bf16, int8, int4, topk")
        }
    }

    func run() throws {
        try reportingErrors {
            let values = try parsedValues()
            let spec = try LinkSpec(parsing: link)
            var namespaces: NetworkNamespaces?
            var workerLink = link
            if netns {
                guard NetworkNamespaces.available else {
                    printError("bench allreduce --netns: skipped, it needs root and iproute2 (ip, tc) to create network namespaces")
                    return
                }
                guard let rate = spec.bytesPerSecond else { throw ValidationError("--netns needs a rate in --link, e.g. 100mbit,40ms") }
                namespaces = try NetworkNamespaces.ring(count: workers, rateBits: rate * 8)
                workerLink = LinkSpec(bytesPerSecond: nil, delaySeconds: spec.delaySeconds).description
            }
            defer { namespaces?.tearDown() }
            if !json {
                let shaping = netns ? "network namespaces, tc tbf at \(spec)" : "loopback, each worker's link emulated at \(spec)"
                print("\(workers) worker processes, \(values * 4 / 1_000_000) MB of fp32, \(shaping)")
                print("codec        link    seconds  MB sent/worker  goodput MB/s  of link  speed-up  rel. RMS error  agree  CPU s/GB")
            }
            var rows: [Row] = []
            for mode in security.split(separator: ",").map(String.init) {
                // A throwaway authority, as a coordinator would make for the run.
                let authority = mode == "tls" ? FileManager.default.temporaryDirectory.appendingPathComponent("tributary-bench-ca-\(getpid())") : nil
                defer { if let authority { try? FileManager.default.removeItem(at: authority) } }
                if let authority { _ = try RunAuthority.loadOrCreate(folder: authority, runName: "bench") }
                for name in codec.split(separator: ",").map(String.init) {
                    var ring = LoopbackRing(workers: workers, values: values, codec: name, link: workerLink, rounds: rounds,
                                            seed: 1, namespaces: namespaces)
                    ring.authorityFolder = authority
                    if handOff { ring.directTo = workers - 1 }
                    let results = try ring.run()
                    // The collective ends when its slowest worker does.
                    let perRound = (0..<rounds).map { r in results.map { $0.roundSeconds[r] }.max()! }.sorted()
                    let seconds = perRound[perRound.count / 2]
                    let bytes = results.map(\.bytesSentPerRound).max()!
                    let goodput = Double(bytes) / seconds
                    var row = Row(codec: results[0].codec, security: mode, seconds: seconds, bytesSentPerWorker: bytes,
                                  goodputBytesPerSecond: goodput, fractionOfLink: spec.bytesPerSecond.map { goodput / $0 },
                                  speedupOverFirst: rows.first.map { $0.seconds / seconds } ?? 1,
                                  relativeRMSError: results.map(\.relativeRMSError).max()!,
                                  workersAgree: Set(results.map(\.resultHash)).count == 1,
                                  cpuSecondsPerGB: results.compactMap(\.cpuSeconds).max().map { $0 / (Double(bytes * rounds) / 1e9) })
                    if handOff {
                        row.handOffSeconds = results.compactMap(\.directSeconds).max()
                        row.handOffBytes = results[0].directBytes
                    }
                    rows.append(row)
                    if !json {
                        print(String(format: "%@ %@ %7.2f  %14.1f  %12.2f  %6.1f%%  %8.2f  %14.2e  %@  %8.2f",
                                     row.codec.padding(toLength: 12, withPad: " ", startingAt: 0),
                                     mode.padding(toLength: 5, withPad: " ", startingAt: 0), row.seconds, Double(bytes) / 1e6,
                                     goodput / 1e6, (row.fractionOfLink ?? .nan) * 100, row.speedupOverFirst, row.relativeRMSError,
                                     row.workersAgree ? "yes" : "NO", row.cpuSecondsPerGB ?? .nan))
                        if let t = row.handOffSeconds, let b = row.handOffBytes {
                            print(String(format: "  direct hand-off rank 0 → rank %d: %.2f s, %.1f MB sent by the source alone; %.2f× faster than the all-reduce",
                                         workers - 1, t, Double(b) / 1e6, seconds / t))
                        }
                    }
                }
            }
            if json { try printJSON(rows) }
        }
    }
}


struct TokenizerBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Encoding throughput of a tokenizer.json on a text file, one thread."
    )

    @Option(name: .long, help: "A Hugging Face tokenizer.json (byte-level BPE).")
    var tokenizer: String

    @Option(name: .long, help: "UTF-8 text to encode.")
    var input: String

    func run() throws {
        try reportingErrors {
            let url = URL(fileURLWithPath: tokenizer)
            _ = try ByteLevelBPE(contentsOf: url)
            guard let text = try? String(contentsOf: URL(fileURLWithPath: input), encoding: .utf8) else {
                throw ValidationError("cannot read \(input) as UTF-8 text")
            }
            let bytes = Double(text.utf8.count)
            var best = Double.infinity
            var count = 0
            for _ in 0..<3 {
                // A new tokenizer each time: its cache of encoded words starts empty, as on new text.
                let bpe = try ByteLevelBPE(contentsOf: url)
                best = min(best, seconds { count = bpe.encode(text).count })
            }
            print(String(format: "%.1f MB -> %d tokens (%.2f bytes/token): %.1f MB/s on one thread", bytes / 1e6, count,
                         bytes / Double(count), bytes / best / 1e6))
        }
    }
}
