import ArgumentParser
import Coordination
import CoordinationClient
import Dispatch
import Foundation
import Logging
import Strategies
import Synchronization
import Training

/// What a finished multi-worker run did, per worker and in total.
struct LocalSummary: Codable {
    struct Worker: Codable {
        var name: String
        var speed: Double
        var steps: Int
        var tokens: Int
        var bytesSent: Int
        var bytesReceived: Int
        var computeSeconds: Double
        var waitSeconds: Double
        var elapsedSeconds: Double
        /// Tokens per second of computing: what the worker does alone.
        var tokensPerComputeSecond: Double
        var computeUtilisation: Double { computeSeconds / max(elapsedSeconds, 1e-9) }
    }
    var strategy: String
    var codec: String
    var innerSteps: Int?
    var link: String
    var runFolder: String
    var workers: [Worker]
    var validationLoss: Double?
    var wallSeconds: Double
    var tokens: Int
    var tokensPerSecond: Double
    /// Sum over workers of what each does alone (tokens per compute second).
    var sumOfAloneTokensPerSecond: Double
    var bytesSent: Int
    /// Mean over workers of computing time / wall time.
    var computeUtilisation: Double

    func printTable() {
        print("")
        print("worker     speed   steps    tokens  tok/s alone   MB sent   MB recv  compute s  waiting s  compute %")
        for w in workers {
            print(String(format: "%-9@ %6.2f %7d %9d %12.0f %9.2f %9.2f %10.1f %10.1f %9.1f%%", w.name as NSString, w.speed, w.steps, w.tokens,
                         w.tokensPerComputeSecond, Double(w.bytesSent) / 1e6, Double(w.bytesReceived) / 1e6, w.computeSeconds,
                         w.waitSeconds, 100 * w.computeUtilisation))
        }
        var line = "\n\(strategy)" + (innerSteps.map { " H=\($0)" } ?? "") + " with \(codec) on \(link): "
        if let validationLoss { line += String(format: "validation loss %.4f, ", validationLoss) }
        line += "\(formatCount(Double(tokens))) tokens in \(formatDuration(wallSeconds)) = \(formatCount(tokensPerSecond)) tokens/s "
        line += String(format: "(%.0f%% of the %@ tokens/s the workers do alone), ", 100 * tokensPerSecond / max(sumOfAloneTokensPerSecond, 1e-9),
                       formatCount(sumOfAloneTokensPerSecond))
        line += String(format: "%.2f MB sent, computing %.1f%% of the time", Double(bytesSent) / 1e6, 100 * computeUtilisation)
        print(line)
        print("run folder: \(runFolder)")
    }
}

/// Starts a coordinator in this process and the workers as child processes, shows their
/// combined progress, and stops everything if one fails.
struct LocalRun {
    let command: LocalCommand
    let config: TrainConfig
    let folder: URL
    let interrupt: InterruptFlag

    func run() async throws -> LocalSummary {
        let speeds = try command.parsedSpeeds()
        // Emulated speeds are relative to the fastest worker, scaled so that together the
        // workers use at most `cpuShare` of the cores: contention must not distort them.
        let cores = Double(ProcessInfo.processInfo.activeProcessorCount)
        let fastest = speeds.max()!
        let scale = min(1, command.cpuShare * cores / speeds.map { $0 / fastest }.reduce(0, +))
        var throttles = speeds.map { $0 / fastest * scale }
        if let fixed = command.throttles {
            let values = fixed.split(separator: ",").compactMap { Double($0) }
            guard values.count == command.workers, values.allSatisfy({ $0 > 0 && $0 <= 1 }) else {
                throw ValidationError("--throttles needs \(command.workers) values in (0, 1]")
            }
            throttles = values
        }

        try FileManager.default.createDirectory(at: folder.appendingPathComponent("logs"), withIntermediateDirectories: true)
        let tokenURL = folder.appendingPathComponent("token")
        let token = (0..<4).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined()
        guard FileManager.default.createFile(atPath: tokenURL.path, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("cannot write \(tokenURL.path)")
        }
        print("run folder: \(folder.path)")
        print("\(config.strategy.name.rawValue)" + (config.strategy.name == .diloco ? " (H=\(config.strategy.innerSteps), \(config.strategy.round.rawValue) rounds)" : "")
            + " with \(config.strategy.codec), \(command.workers) workers at speeds \(throttles.map { String(format: "%.2f", $0) }.joined(separator: ", "))"
            + " of one core, link \(command.link)")

        let logger = makeLogger("coordinator", level: .warning)
        let ports = AsyncStream.makeStream(of: Int.self)
        let processes = Mutex<[Process]>([])
        let start = DispatchTime.now().uptimeNanoseconds
        var finalStatus: StatusReport?
        do {
            try await withThrowingTaskGroup(of: StatusReport?.self) { group in
                group.addTask {
                    try await serveCoordinator(config: config, workers: command.workers, token: token, host: "127.0.0.1", port: 0,
                                               folder: folder, heartbeatTimeout: command.heartbeatTimeout, logger: logger) {
                        ports.continuation.yield($0)
                    }
                    return nil
                }
                var iterator = ports.stream.makeAsyncIterator()
                guard let port = await iterator.next() else { throw ValidationError("the coordinator did not start") }
                let client = CoordinatorClient(host: "127.0.0.1", port: port)
                let started = try (0..<command.workers).map { i in
                    try spawnWorker(index: i, port: port, tokenFile: tokenURL, speed: throttles[i])
                }
                processes.withLock { $0 = started }
                group.addTask { try await watch(started, client: client) }
                group.addTask { try await showProgress(client: client) }
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
            if interrupt.isSet {
                printError("\ninterrupted; workers stopped. Checkpoints so far are in \(folder.appendingPathComponent("checkpoints").path)")
                throw ExitCode(130)
            }
            throw error
        }
        let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return summary(finalStatus!, speeds: throttles, wall: wall)
    }

    private func spawnWorker(index: Int, port: Int, tokenFile: URL, speed: Double) throws -> Process {
        let process = Process()
        process.executableURL = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = ["worker", "--join", "127.0.0.1:\(port)", "--token-file", tokenFile.path, "--name", "worker-\(index)",
                             "--speed", String(speed), "--link", command.link, "--threads", "1", "--out", folder.path, "--log-level", "warning"]
            + (command.resume != nil ? ["--resume"] : [])
        let log = folder.appendingPathComponent("logs/worker-\(index).log")
        guard FileManager.default.createFile(atPath: log.path, contents: nil) else { throw ValidationError("cannot create \(log.path)") }
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
                    printError("\nworker-\(i) failed (exit \(p.terminationStatus), log \(log.path)); the others go back to the last round they all completed and go on without it")
                    continue
                }
                let tail = (try? String(contentsOf: log, encoding: .utf8))?.split(separator: "\n").suffix(5).joined(separator: "\n") ?? ""
                throw ValidationError("worker-\(i) failed (exit \(p.terminationStatus)); the end of \(log.path):\n\(tail)")
            }
            if interrupt.isSet { throw CancellationError() }
            if processes.allSatisfy({ !$0.isRunning }) {
                let status = try await client.status()
                guard status.phase == .finished else { throw ValidationError("every worker exited before the run finished; see \(folder.path)/logs") }
                return status
            }
        }
    }

    /// One progress line per second on a terminal (rewritten), one per round of worker-0 otherwise.
    private func showProgress(client: CoordinatorClient) async throws -> StatusReport? {
        let interactive = isatty(STDOUT_FILENO) == 1
        var lastRound = -1
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
            if interactive {
                print("\r\u{1B}[2K" + text, terminator: "")
                fflush(nil)
            } else if lead.round != lastRound {
                print(text)
            }
            lastRound = lead.round
        }
    }

    private func summary(_ status: StatusReport, speeds: [Double], wall: Double) -> LocalSummary {
        let reports = status.members.sorted { $0.name < $1.name }.compactMap(\.lastReport)
        let workers = reports.enumerated().map { i, r in
            LocalSummary.Worker(name: r.name, speed: speeds[Int(r.name.split(separator: "-").last!) ?? i], steps: r.steps, tokens: r.tokens,
                                bytesSent: r.bytesSent, bytesReceived: r.bytesReceived, computeSeconds: r.computeSeconds,
                                waitSeconds: r.waitSeconds, elapsedSeconds: r.elapsedSeconds, tokensPerComputeSecond: r.tokensPerComputeSecond)
        }
        let tokens = workers.reduce(0) { $0 + $1.tokens }
        let trainingSeconds = workers.map(\.elapsedSeconds).max() ?? wall
        return LocalSummary(
            strategy: config.strategy.name.rawValue, codec: config.strategy.codec,
            innerSteps: config.strategy.name == .diloco ? config.strategy.innerSteps : nil, link: command.link, runFolder: folder.path,
            workers: workers, validationLoss: reports.first(where: { $0.name == "worker-0" })?.validationLoss, wallSeconds: wall,
            tokens: tokens, tokensPerSecond: Double(tokens) / trainingSeconds,
            sumOfAloneTokensPerSecond: workers.reduce(0) { $0 + $1.tokensPerComputeSecond },
            bytesSent: workers.reduce(0) { $0 + $1.bytesSent },
            computeUtilisation: workers.map(\.computeUtilisation).reduce(0, +) / Double(max(1, workers.count)))
    }
}
