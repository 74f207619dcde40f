import EngineLink
import Basics
import ArgumentParser
import Coordination
import CoordinationClient
import CoordinationServer
import Foundation
import Logging
import ModelCore
import RunTrust
import ClusterRuns
import Strategies
import TensorCore
import Training
import Transport
import Wire

/// Reads a token file: its first line, trimmed; at most 4 KB.
func readToken(_ path: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read the token file \(path)") }
    guard data.count <= 4096, let text = String(data: data, encoding: .utf8) else {
        throw ValidationError("the token file \(path) must be UTF-8 text of at most 4 KB")
    }
    let token = text.split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
    guard !token.isEmpty else { throw ValidationError("the token file \(path) is empty; put a secret on its first line") }
    return token
}

/// A run's config, checked the way workers will check it, with the codec name validated too.
func loadClusterConfig(_ path: String) throws -> TrainConfig {
    let config = try TrainConfig.load(contentsOf: URL(fileURLWithPath: path))
    try checkCodec(config)
    return config
}

func checkCodec(_ config: TrainConfig) throws {
    guard CodecID(name: config.strategy.codec) != nil else {
        throw ConfigError(field: "strategy.codec", reason: "unknown codec '\(config.strategy.codec)'; use fp32, fp16, bf16, int8, int4 or topk")
    }
}

/// Splits `HOST:PORT`.
func parseHostPort(_ text: String, flag: String) throws -> (host: String, port: Int) {
    guard let colon = text.lastIndex(of: ":"), colon != text.startIndex, let port = Int(text[text.index(after: colon)...]),
          (0...65535).contains(port)
    else { throw ValidationError("\(flag) must be HOST:PORT, got '\(text)'") }
    return (String(text[..<colon]), port)
}


/// Serves a coordinator for `config` until every worker has finished; writes the run folder.
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Membership and run state for workers on other machines (HTTP/JSON: /status, /metrics)."
    )

    @Option(help: "HOST:PORT to serve on.") var listen = "0.0.0.0:7070"
    @Option(help: "File whose first line is the secret workers must present.") var tokenFile: String
    @Option(help: "The run's training config (YAML), including its strategy section.") var config: String
    @Option(help: "Workers the ring waits for.") var workers: Int
    @Option(help: "Run folder (default: a new one under runs/).") var out: String?
    @Option(help: "Seconds without a heartbeat after which a worker counts as lost and the others go on without it.")
    var heartbeatTimeout = 15.0
    @Flag(help: "Plain HTTP, and plain TCP between workers, instead of TLS with the run's own certificates: anyone who can reach the ports can read the run and, with the run id, join its ring. For benchmarks and closed networks only.")
    var insecure = false

    func validate() throws {
        guard (1...256).contains(workers) else { throw ValidationError("--workers must be in 1...256") }
        guard (0.5...3600).contains(heartbeatTimeout) else { throw ValidationError("--heartbeat-timeout must be in 0.5...3600 seconds") }
    }

    func run() async throws {
        try await reportingErrors {
            let token = try readToken(tokenFile)
            let cfg = try loadClusterConfig(config)
            let (host, port) = try parseHostPort(listen, flag: "--listen")
            let folder = out.map { URL(fileURLWithPath: $0) } ?? RunDirectory.timestampedURL(under: URL(fileURLWithPath: "runs"), prefix: "cluster")
            let logger = makeLogger("coordinator", level: .info)
            if insecure { logger.warning("--insecure: the API and the ring are neither encrypted nor authenticated") }
            try await serveCoordinator(config: cfg, workers: workers, token: token, host: host, port: port, folder: folder,
                                       heartbeatTimeout: heartbeatTimeout, secure: !insecure, logger: logger) { port in
                print("coordinator on \(host):\(port), waiting for \(workers) workers; run folder \(folder.path)")
                let shown = ["0.0.0.0", "::", ""].contains(host) ? "127.0.0.1" : host
                print("dashboard: \(insecure ? "http" : "https")://\(shown.contains(":") ? "[\(shown)]" : shown):\(port)/")
                if !insecure {
                    let authority = folder.appendingPathComponent(RunAuthority.certificateFile)
                    let hash = (try? CoordinatorTrust.fingerprint(ofPEM: String(contentsOf: authority, encoding: .utf8))) ?? "?"
                    print("workers join with --ca \(authority.path) (copied to their machine) or --ca-hash \(hash)")
                }
                fflush(nil)
            }
            print("run finished; run folder \(folder.path)")
        }
    }
}

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Join a coordinator's run and train with its strategy."
    )

    @Option(help: "The coordinator's HOST:PORT.") var join: String
    @Option(help: "File whose first line is the run's secret.") var tokenFile: String
    @Option(help: "The run's authority certificate (run-ca.pem in the coordinator's run folder): trust it alone.") var ca: String?
    @Option(help: "Or its fingerprint, sha256:HEX, as the coordinator printed it: fetch the authority and check it.") var caHash: String?
    @Flag(help: "Plain HTTP and TCP, for a coordinator started with --insecure.") var insecure = false
    @Option(help: "A stable name; a restarted worker re-joins under it (default: host-pid).") var name: String?
    @Option(help: "Emulated relative speed in (0, 1]: 0.5 computes half as fast as this machine.") var speed = 1.0
    @Option(help: "Emulated link for this worker's connections, e.g. 100mbit,40ms.") var link = "unlimited"
    @Option(help: "Spoil this worker's contribution on purpose, to see the update guard work: nan@ROUND or scale=FACTOR@ROUND.")
    var injectFault: String?
    @Option(help: "Threads for the engine (default: the cores this process may use).") var threads = min(64, UsableCores.count)
    @Option(help: "Address for peer connections.") var listen = "127.0.0.1"
    @Option(help: "Address peers should dial, if not --listen.") var advertise: String?
    @Option(help: "Where to save checkpoints: the shared model if this worker becomes rank 0, and this worker's own state for --resume.") var out: String?
    @Flag(help: "Go on from the newest state every worker of the run saved (each worker under its name, same --out).") var resume = false
    @Option(help: "Log level: debug, info, warning.") var logLevel = "info"
    @Option(help: ArgumentHelp("A Unix socket where an engine of its own (the Python package's EngineLink) connects and trains the inner steps.",
                               valueName: "path"))
    var engineSocket: String?

    func validate() throws {
        guard speed > 0, speed <= 1 else { throw ValidationError("--speed must be in (0, 1], got \(speed)") }
        guard (1...64).contains(threads) else { throw ValidationError("--threads must be in 1...64") }
        _ = try LinkSpec(parsing: link)
        _ = try parseHostPort(join, flag: "--join")
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level must be debug, info or warning") }
        guard [ca != nil, caHash != nil, insecure].filter({ $0 }).count == 1 else {
            throw ValidationError("give one of --ca FILE or --ca-hash sha256:HEX (both printed by the coordinator), or --insecure "
                + "for a coordinator started with --insecure")
        }
        if let caHash, !caHash.hasPrefix("sha256:") || caHash.count != 71 {
            throw ValidationError("--ca-hash must be sha256: and 64 hex digits, as the coordinator printed it; got '\(caHash)'")
        }
    }

    /// How this worker trusts the coordinator: the authority file, the authority fetched and
    /// checked against its fingerprint, or nothing (`--insecure`).
    func trust(host: String, port: Int) async throws -> CoordinatorTrust? {
        if let ca {
            guard let data = FileManager.default.contents(atPath: ca), data.count <= 64 << 10 else {
                throw ValidationError("cannot read --ca \(ca) (the run's run-ca.pem, at most 64 KiB)")
            }
            return try CoordinatorTrust(authorityPEM: String(decoding: data, as: UTF8.self))
        }
        if let caHash { return try await CoordinatorClient.trust(host: host, port: port, fingerprint: caHash) }
        return nil
    }

    func run() async throws {
        BLASCoreRestart.announce()
        try await reportingErrors {
            let (host, port) = try parseHostPort(join, flag: "--join")
            let client = CoordinatorClient(host: host, port: port, trust: try await trust(host: host, port: port))
            var options = WorkerOptions(coordinator: client, token: try readToken(tokenFile),
                                        name: name ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())")
            options.speed = speed
            options.link = try LinkSpec(parsing: link)
            options.fault = try injectFault.map(FaultInjection.init(parsing:))
            options.threads = threads
            options.listenHost = listen
            options.advertiseHost = advertise
            options.checkpointFolder = out.map { URL(fileURLWithPath: $0) }
            guard !resume || out != nil else { throw ValidationError("--resume needs --out, where this worker saved its state") }
            options.resume = resume
            let logger = makeLogger("worker \(options.name)", level: Logger.Level(rawValue: logLevel)!)
            let final: WorkerReport
            if let engineSocket {
                final = try await ExternalEngine.serve(path: engineSocket, name: options.name, logger: logger) { engine in
                    try await WorkerSession.run(options, logger: logger, engine: engine)
                }
            } else {
                final = try await WorkerSession.run(options, logger: logger)
            }
            print("done: \(final.steps) steps, \(final.tokens) tokens, sent \(final.bytesSent) bytes, "
                + String(format: "computing %.1f s, waiting %.1f s", final.computeSeconds, final.waitSeconds))
        }
    }
}
