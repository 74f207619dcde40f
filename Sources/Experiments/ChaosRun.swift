import ClusterRuns
import Coordination
import CoordinationClient
import Foundation
import RunTrust
import Training

/// A run of `tributary coordinator` and `tributary worker` processes on loopback, as on several
/// machines, disturbed by a `ChaosPlan`: workers killed (and started again under their name, as a
/// supervisor would), frozen (and woken), the coordinator killed (and started again with the same
/// command line). What was done, and when, comes back for `ChaosAnalysis`.
public struct ChaosRun {
    public var executable: URL
    public var config: TrainConfig
    public var folder: URL
    /// Each worker's compute throttle, a fraction of one core (see `LocalRunOptions.throttles`).
    public var throttles: [Double]
    public var link = "unlimited"
    public var heartbeatTimeout = 6.0
    /// nil: undisturbed (the baseline).
    public var plan: ChaosPlan?
    /// The run fails if it takes longer.
    public var timeLimit = 3600.0

    public init(executable: URL, config: TrainConfig, folder: URL, throttles: [Double]) {
        (self.executable, self.config, self.folder, self.throttles) = (executable, config, folder, throttles)
    }

    /// What happened to the run.
    public struct Outcome: Codable, Sendable {
        /// The plan's events that were carried out, in Unix time (an event that found its worker
        /// already down, or the run ending, is skipped).
        public var done: [ChaosEvent]
        public var doneAt: [Double]
        public var skipped: Int
        public var kills: [ChaosAnalysis.Kill]
        /// Workers that exited with an error on their own (started again as well).
        public var unexpectedExits: [String]
        public var startedAt: Double
        public var wallSeconds: Double
        /// Checkpoints in the run folder (the shared model's and every worker's own), and those
        /// whose files do not all match their saved digests.
        public var checkpoints: Int
        public var damagedCheckpoints: [String]
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    public func run(isInterrupted: @escaping @Sendable () -> Bool, log: @escaping @Sendable (String) -> Void) async throws -> Outcome {
        let manager = FileManager.default
        let logs = folder.appendingPathComponent("logs")
        try manager.createDirectory(at: logs, withIntermediateDirectories: true)
        let token = folder.appendingPathComponent("token"), configFile = folder.appendingPathComponent("run.yaml")
        let secret = (0..<4).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined()
        guard manager.createFile(atPath: token.path, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw Failure(description: "cannot write \(token.path)")
        }
        try config.yaml().write(to: configFile, atomically: true, encoding: .utf8)
        let run = folder.appendingPathComponent("run")
        let port = try freeLoopbackPort()
        let workers = throttles.count

        var launches = 0
        func start(_ arguments: [String], log name: String) throws -> Process {
            launches += 1
            let process = Process()
            process.executableURL = executable
            process.arguments = arguments
            let file = logs.appendingPathComponent("\(name)-\(launches).log")
            _ = manager.createFile(atPath: file.path, contents: nil)
            let handle = try FileHandle(forWritingTo: file)
            (process.standardOutput, process.standardError) = (handle, handle)
            try process.run()
            return process
        }
        // The same command line every time: a restarted coordinator continues the run.
        let coordinatorArguments = ["coordinator", "--listen", "127.0.0.1:\(port)", "--token-file", token.path, "--config", configFile.path,
                                    "--workers", "\(workers)", "--out", run.path, "--heartbeat-timeout", "\(heartbeatTimeout)"]
        func startWorker(_ i: Int) throws -> Process {
            try start(["worker", "--join", "127.0.0.1:\(port)", "--token-file", token.path, "--name", "worker-\(i)",
                       "--speed", "\(throttles[i])", "--link", link, "--threads", "1", "--out", run.path, "--log-level", "warning",
                       "--ca", run.appendingPathComponent(RunAuthority.certificateFile).path], log: "worker-\(i)")
        }

        var coordinator = try start(coordinatorArguments, log: "coordinator")
        var processes: [Process] = []
        defer {
            for p in processes + [coordinator] where p.isRunning {
                kill(p.processIdentifier, SIGCONT)
                p.terminate()
            }
        }
        try await waitUntilServing(port: port, authority: run.appendingPathComponent(RunAuthority.certificateFile), coordinator: coordinator)
        processes = try (0..<workers).map(startWorker)
        let startedAt = Date().timeIntervalSince1970
        var outcome = Outcome(done: [], doneAt: [], skipped: 0, kills: [], unexpectedExits: [], startedAt: startedAt, wallSeconds: 0,
                              checkpoints: 0, damagedCheckpoints: [])
        var pending = plan?.events ?? []
        /// When each disturbed worker (or the coordinator, index `workers`) comes back, and how.
        var comeback: [Int: (at: Double, kind: ChaosEvent.Kind)] = [:]
        var finished = Set<Int>()
        while finished.count < workers {
            try await Task.sleep(nanoseconds: 100_000_000)
            if isInterrupted() { throw CancellationError() }
            let t = Date().timeIntervalSince1970 - startedAt
            guard t < timeLimit else { throw Failure(description: "the run took over \(Int(timeLimit)) s; see \(logs.path)") }
            for (i, p) in processes.enumerated() where !p.isRunning && !finished.contains(i) && comeback[i] == nil {
                if p.terminationStatus == 0 && p.terminationReason == .exit {
                    finished.insert(i)
                } else if finished.isEmpty {
                    outcome.unexpectedExits.append("worker-\(i) (exit \(p.terminationStatus))")
                    log("worker-\(i) exited with \(p.terminationStatus); starting it again")
                    processes[i] = try startWorker(i)
                } else {
                    finished.insert(i) // the run ended without it
                }
            }
            // The run finished and its coordinator exited by itself: a worker still running (one woken
            // from a freeze after the end, retrying a coordinator that is gone) has nothing left to do.
            if !finished.isEmpty, !coordinator.isRunning, comeback[workers] == nil {
                for (i, p) in processes.enumerated() where !finished.contains(i) {
                    if p.isRunning {
                        log("worker-\(i) still running after the run ended and its coordinator exited: stopped")
                        kill(p.processIdentifier, SIGCONT)
                        p.terminate()
                    }
                    comeback[i] = nil
                    finished.insert(i)
                }
            }
            for (i, back) in comeback where back.at <= t {
                comeback[i] = nil
                switch back.kind {
                case .kill: if finished.isEmpty { processes[i] = try startWorker(i) } else { finished.insert(i) }
                case .freeze: kill(processes[i].processIdentifier, SIGCONT)
                case .coordinator: coordinator = try start(coordinatorArguments, log: "coordinator")
                }
            }
            while let event = pending.first, event.at <= t {
                pending.removeFirst()
                let target = event.worker ?? workers
                // Never more than all workers but one down at once, nothing once the run ends.
                guard finished.isEmpty, comeback[target] == nil,
                      event.kind == .coordinator || comeback.keys.filter({ $0 < workers }).count < workers - 1
                else { outcome.skipped += 1; continue }
                let now = Date().timeIntervalSince1970
                switch event.kind {
                case .kill:
                    kill(processes[target].processIdentifier, SIGKILL)
                    outcome.kills.append(.init(worker: "worker-\(target)", time: now))
                case .freeze: kill(processes[target].processIdentifier, SIGSTOP)
                case .coordinator: kill(coordinator.processIdentifier, SIGKILL)
                }
                log(String(format: "%6.1f s: %@ %@", t, event.kind.rawValue, event.worker.map { "worker-\($0)" } ?? "the coordinator"))
                comeback[target] = (t + (plan?.downtime(of: event) ?? 0), event.kind)
                outcome.done.append(event)
                outcome.doneAt.append(now)
            }
        }
        outcome.wallSeconds = Date().timeIntervalSince1970 - startedAt
        // The coordinator exits by itself once the run finished (a restarted one may be waiting
        // for it still, if it missed the last reports: it is stopped).
        let deadline = Date().addingTimeInterval(20)
        while coordinator.isRunning, Date() < deadline { try await Task.sleep(nanoseconds: 100_000_000) }
        (outcome.checkpoints, outcome.damagedCheckpoints) = verifyCheckpoints(under: run.appendingPathComponent("checkpoints"))
        return outcome
    }

    /// Polls until the coordinator serves (its authority written, `/status` answering over TLS).
    private func waitUntilServing(port: Int, authority: URL, coordinator: Process) async throws {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if !coordinator.isRunning { throw Failure(description: "the coordinator exited with \(coordinator.terminationStatus); see \(folder.path)/logs") }
            if let pem = try? String(contentsOf: authority, encoding: .utf8), let trust = try? CoordinatorTrust(authorityPEM: pem),
               (try? await CoordinatorClient(host: "127.0.0.1", port: port, trust: trust).status()) != nil {
                return
            }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        throw Failure(description: "the coordinator did not serve within 60 s; see \(folder.path)/logs")
    }
}

/// Every checkpoint folder (one with `state.json`) under `root`, and those whose files do not
/// match their digests.
func verifyCheckpoints(under root: URL) -> (count: Int, damaged: [String]) {
    let manager = FileManager.default
    var count = 0, damaged: [String] = []
    guard let walker = manager.enumerator(at: root, includingPropertiesForKeys: nil) else { return (0, []) }
    for case let url as URL in walker where url.lastPathComponent == "state.json" {
        count += 1
        let folder = url.deletingLastPathComponent()
        do { try CheckpointStore.verifyFiles(at: folder) } catch { damaged.append("\(folder.path): \(error)") }
    }
    return (count, damaged)
}

/// A port nothing listens on now (bound to 0, read, closed).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw ChaosRun.Failure(description: "cannot open a socket") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw ChaosRun.Failure(description: "cannot bind a loopback port") }
    return Int(UInt16(bigEndian: address.sin_port))
}
