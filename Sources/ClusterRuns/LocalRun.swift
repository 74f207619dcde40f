import Basics
import Coordination
import CoordinationClient
import Dispatch
import Foundation
import Logging
import RunTrust
import Synchronization
import Training

/// How `tributary local` runs its workers: how many, how fast, on which emulated links.
public struct LocalRunOptions: Sendable {
    public var workers = 4
    /// Relative speeds, one per worker.
    public var speeds: [Double] = [1, 1, 0.5, 0.5]
    /// Emulated link of every worker, e.g. `100mbit,40ms` or `unlimited`.
    public var link = "100mbit,40ms"
    /// Share of this machine's cores the workers may use together, so that emulated speeds are
    /// not distorted by contention.
    public var cpuShare = 0.7
    /// Fractions of one core taken as they are instead of `speeds` and `cpuShare` (for measurements).
    public var throttles: [Double]?
    /// Seconds without a heartbeat after which a worker counts as lost.
    public var heartbeatTimeout = 6.0
    /// Compute threads of each worker (more than one only where a worker has cores to itself).
    public var workerThreads = 1
    /// Go on from the state the workers saved in the run folder.
    public var resume = false
    /// Faults to inject on purpose, by worker index (`--inject-fault` of `tributary worker`).
    public var faults: [Int: String] = [:]
    /// Plain HTTP and TCP instead of TLS with the run's certificates (`--insecure`, for benchmarks).
    public var insecure = false
    /// The `tributary` binary the worker processes run.
    public var executable: URL

    public init(executable: URL) {
        self.executable = executable
    }

    /// Each worker's compute throttle, a fraction of one core: speeds relative to the fastest,
    /// scaled so that together the workers use at most `cpuShare` of `cores`.
    public func throttles(cores: Int) throws -> [Double] {
        if let throttles {
            guard throttles.count == workers, throttles.allSatisfy({ $0 > 0 && $0 <= 1 }) else {
                throw LocalRunError(reason: "--throttles needs \(workers) values in (0, 1]")
            }
            return throttles
        }
        guard speeds.count == workers, speeds.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw LocalRunError(reason: "\(speeds.count) speeds for \(workers) workers; give one positive speed per worker")
        }
        let fastest = speeds.max()!
        let scale = min(1, cpuShare * Double(cores) / speeds.map { $0 / fastest }.reduce(0, +))
        return speeds.map { $0 / fastest * scale }
    }
}

/// The workers' layout of a local run, saved in its folder (`local-run.json`) so that a resumed
/// run keeps it unless told otherwise.
public struct LocalTopology: Codable, Sendable, Equatable {
    public var workers: Int
    public var speeds: [Double]
    public var link: String
    public var cpuShare: Double
    public var throttles: [Double]?
    public var heartbeatTimeout: Double

    static let file = "local-run.json"

    /// The topology saved in a run folder; nil when it has none (runs from before it was saved).
    public static func saved(in folder: URL) throws -> LocalTopology? {
        let url = folder.appendingPathComponent(file)
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        guard data.count < 1 << 20, let topology = try? JSONDecoder().decode(LocalTopology.self, from: data) else {
            throw LocalRunError(reason: "\(url.path) is damaged; give --workers, --speeds and --link to resume")
        }
        return topology
    }
}

extension LocalRunOptions {
    public var topology: LocalTopology {
        get { LocalTopology(workers: workers, speeds: speeds, link: link, cpuShare: cpuShare, throttles: throttles, heartbeatTimeout: heartbeatTimeout) }
        set {
            (workers, speeds, link, cpuShare) = (newValue.workers, newValue.speeds, newValue.link, newValue.cpuShare)
            (throttles, heartbeatTimeout) = (newValue.throttles, newValue.heartbeatTimeout)
        }
    }
}

/// Why a local run stopped.
public struct LocalRunError: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
    public init(reason: String) { self.reason = reason }
}

/// What a local run tells its user as it goes.
public enum LocalRunEvent: Sendable {
    /// Something worth a line: the run folder, a lost worker.
    case notice(String)
    /// The combined progress, about once a second; `round` changes once per round of worker 0.
    case progress(String, round: Int)
}

/// Starts a coordinator in this process and the workers as child processes, follows their
/// combined progress, and stops everything if one fails. What happens goes to `events`; only the
/// coordinator's own warnings are logged (to standard error).
public struct LocalRun: Sendable {
    public let options: LocalRunOptions
    public let config: TrainConfig
    public let folder: URL
    let isInterrupted: @Sendable () -> Bool
    let events: @Sendable (LocalRunEvent) -> Void

    public init(options: LocalRunOptions, config: TrainConfig, folder: URL, isInterrupted: @escaping @Sendable () -> Bool = { false },
                events: @escaping @Sendable (LocalRunEvent) -> Void = { _ in }) {
        self.options = options
        self.config = config
        self.folder = folder
        self.isInterrupted = isInterrupted
        self.events = events
    }

    public func run() async throws -> LocalSummary {
        let throttles = try options.throttles(cores: UsableCores.count)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("logs"), withIntermediateDirectories: true)
        let tokenURL = folder.appendingPathComponent("token")
        let token = (0..<4).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined()
        guard FileManager.default.createFile(atPath: tokenURL.path, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw LocalRunError(reason: "cannot write \(tokenURL.path)")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(options.topology).write(to: folder.appendingPathComponent(LocalTopology.file), options: .atomic)
        events(.notice("run folder: \(folder.path)"))
        events(.notice("\(config.strategy.name.rawValue)" + (config.strategy.name == .diloco ? " (H=\(config.strategy.innerSteps), \(config.strategy.round.rawValue) rounds)" : "")
            + " with \(config.strategy.codec), \(options.workers) workers at speeds \(throttles.map { String(format: "%.2f", $0) }.joined(separator: ", "))"
            + " of one core, link \(options.link)"))

        var logger = Logger(label: "coordinator") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .warning
        let ports = AsyncStream.makeStream(of: Int.self)
        let processes = Mutex<[Process]>([])
        let start = DispatchTime.now().uptimeNanoseconds
        var finalStatus: StatusReport?
        do {
            try await withThrowingTaskGroup(of: StatusReport?.self) { group in
                group.addTask { [config, options, folder, logger] in
                    try await serveCoordinator(config: config, workers: options.workers, token: token, host: "127.0.0.1", port: 0,
                                               folder: folder, heartbeatTimeout: options.heartbeatTimeout, continuesSavedRun: false,
                                               secure: !options.insecure, logger: logger) {
                        ports.continuation.yield($0)
                    }
                    return nil
                }
                var iterator = ports.stream.makeAsyncIterator()
                guard let port = await iterator.next() else { throw LocalRunError(reason: "the coordinator did not start") }
                let authorityFile = folder.appendingPathComponent(RunAuthority.certificateFile)
                let trust = options.insecure ? nil : try CoordinatorTrust(authorityPEM: try String(contentsOf: authorityFile, encoding: .utf8))
                let client = CoordinatorClient(host: "127.0.0.1", port: port, trust: trust)
                events(.notice("dashboard: \(options.insecure ? "http" : "https")://127.0.0.1:\(port)/ (live while the run trains"
                    + (options.insecure ? "; --insecure: links are neither encrypted nor authenticated)"
                        : "; the browser must trust \(authorityFile.path), or accept it once)")))
                let started = try (0..<options.workers).map { i in
                    try spawnWorker(index: i, port: port, tokenFile: tokenURL, speed: throttles[i])
                }
                processes.withLock { $0 = started }
                group.addTask { try await watch(started, client: client) }
                group.addTask { try await followProgress(client: client) }
                while let result = try await group.next() {
                    if let result {
                        finalStatus = result
                        group.cancelAll()
                        break
                    }
                }
            }
        } catch {
            for p in processes.withLock({ $0 }) where p.isRunning { p.terminate() }
            if isInterrupted() { throw CancellationError() }
            throw error
        }
        let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return LocalSummary(finalStatus!, config: config, link: options.link, folder: folder, speeds: throttles, wall: wall)
    }

    private func spawnWorker(index: Int, port: Int, tokenFile: URL, speed: Double) throws -> Process {
        let process = Process()
        process.executableURL = options.executable
        var arguments = ["worker", "--join", "127.0.0.1:\(port)", "--token-file", tokenFile.path, "--name", "worker-\(index)",
                         "--speed", String(speed), "--link", options.link, "--threads", String(options.workerThreads), "--out", folder.path,
                         "--log-level", "warning"]
        if options.resume { arguments.append("--resume") }
        if let fault = options.faults[index] { arguments += ["--inject-fault", fault] }
        arguments += options.insecure ? ["--insecure"] : ["--ca", folder.appendingPathComponent(RunAuthority.certificateFile).path]
        process.arguments = arguments
        let log = folder.appendingPathComponent("logs/worker-\(index).log")
        guard FileManager.default.createFile(atPath: log.path, contents: nil) else { throw LocalRunError(reason: "cannot create \(log.path)") }
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    /// Returns the final status once every worker exited and the run finished. A worker that
    /// fails while the others train is left behind (they re-form the ring without it); one that
    /// fails before training starts, or the last one, stops the run with its log.
    private func watch(_ processes: [Process], client: CoordinatorClient) async throws -> StatusReport? {
        var lost: Set<Int> = []
        while true {
            try await Task.sleep(nanoseconds: 300_000_000)
            for (i, p) in processes.enumerated() where !p.isRunning && p.terminationStatus != 0 && !lost.contains(i) {
                let log = folder.appendingPathComponent("logs/worker-\(i).log")
                let training = (try? await client.status())?.phase == .training
                if training && processes.enumerated().contains(where: { $0.offset != i && !lost.contains($0.offset) && $0.element.isRunning }) {
                    lost.insert(i)
                    events(.notice("worker-\(i) failed (exit \(p.terminationStatus), log \(log.path)); the others go back to the last round they all completed and go on without it"))
                    continue
                }
                let tail = (try? String(contentsOf: log, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: "\n") ?? ""
                throw LocalRunError(reason: "worker-\(i) failed (exit \(p.terminationStatus)); the end of \(log.path):\n\(tail)")
            }
            if isInterrupted() { throw CancellationError() }
            if processes.allSatisfy({ !$0.isRunning }) {
                let status = try await client.status()
                guard status.phase == .finished else { throw LocalRunError(reason: "every worker exited before the run finished; see \(folder.path)/logs") }
                return status
            }
        }
    }

    /// The combined progress once a second, from the coordinator's status.
    private func followProgress(client: CoordinatorClient) async throws -> StatusReport? {
        var validation: Double?
        while true {
            try await Task.sleep(nanoseconds: 1_000_000_000)
            guard let status = try? await client.status() else { continue }
            let reports = status.members.compactMap(\.lastReport)
            guard let lead = reports.first(where: { $0.name == "worker-0" }) else { continue }
            if let v = lead.validationLoss { validation = v }
            let tokens = reports.reduce(0) { $0 + $1.tokens }
            let elapsed = reports.map(\.elapsedSeconds).max() ?? 1
            let sent = reports.reduce(0) { $0 + $1.bytesSent }
            let utilisation = reports.map { $0.computeSeconds / max($0.elapsedSeconds, 1e-9) }.reduce(0, +) / Double(reports.count)
            var text = "round \(lead.round + 1)/\(lead.rounds) | loss \(String(format: "%.4f", lead.loss))"
            if let validation { text += " | val \(String(format: "%.4f", validation))" }
            text += " | \(formatCount(Double(tokens) / elapsed)) tok/s | sent \(String(format: "%.1f", Double(sent) / 1e6)) MB"
            text += " | computing \(String(format: "%.0f", 100 * utilisation))% | workers \(status.members.count { $0.state == .active })/\(status.expectedWorkers)"
            events(.progress(text, round: lead.round))
        }
    }
}
