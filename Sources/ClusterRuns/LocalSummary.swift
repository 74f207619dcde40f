import Basics
import Coordination
import Foundation
import Training

/// What a finished multi-worker run did, per worker and in total.
public struct LocalSummary: Codable, Sendable {
    public struct Worker: Codable, Sendable {
        public var name: String
        public var speed: Double
        public var steps: Int
        public var tokens: Int
        public var bytesSent: Int
        public var bytesReceived: Int
        public var computeSeconds: Double
        public var waitSeconds: Double
        public var elapsedSeconds: Double
        /// Tokens per second of computing: what the worker does alone.
        public var tokensPerComputeSecond: Double
        /// Bytes per second it sent in its busiest tenth of a second, and the most bytes in any one second.
        public var peakBytesPerSecond: Double?
        public var peakBytesInASecond: Double?
        public var computeUtilisation: Double { computeSeconds / max(elapsedSeconds, 1e-9) }
    }
    public var strategy: String
    public var codec: String
    public var innerSteps: Int?
    public var link: String
    public var runFolder: String
    public var workers: [Worker]
    public var validationLoss: Double?
    public var wallSeconds: Double
    public var tokens: Int
    public var tokensPerSecond: Double
    /// Sum over workers of what each does alone (tokens per compute second).
    public var sumOfAloneTokensPerSecond: Double
    public var bytesSent: Int
    /// The busiest worker's rate in its busiest tenth of a second (the link rate the run needs at its peak),
    /// and the most bytes a worker sent in one second.
    public var peakBytesPerSecond: Double?
    public var peakBytesInASecond: Double?
    /// Mean over workers of computing time / wall time.
    public var computeUtilisation: Double

    /// The summary of a finished run from the coordinator's final status; `speeds` are the
    /// workers' throttles in index order.
    init(_ status: StatusReport, config: TrainConfig, link: String, folder: URL, speeds: [Double], wall: Double) {
        let reports = status.members.sorted { $0.name < $1.name }.compactMap(\.lastReport)
        workers = reports.enumerated().map { i, r in
            Worker(name: r.name, speed: speeds[Int(r.name.split(separator: "-").last!) ?? i], steps: r.steps, tokens: r.tokens,
                   bytesSent: r.bytesSent, bytesReceived: r.bytesReceived, computeSeconds: r.computeSeconds,
                   waitSeconds: r.waitSeconds, elapsedSeconds: r.elapsedSeconds, tokensPerComputeSecond: r.tokensPerComputeSecond,
                   peakBytesPerSecond: r.peakBytesPerSecond, peakBytesInASecond: r.peakBytesInASecond)
        }
        strategy = config.strategy.name.rawValue
        codec = config.strategy.codec
        innerSteps = config.strategy.name == .diloco ? config.strategy.innerSteps : nil
        self.link = link
        runFolder = folder.path
        validationLoss = reports.first(where: { $0.name == "worker-0" })?.validationLoss
        wallSeconds = wall
        tokens = workers.reduce(0) { $0 + $1.tokens }
        tokensPerSecond = Double(tokens) / (workers.map(\.elapsedSeconds).max() ?? wall)
        sumOfAloneTokensPerSecond = workers.reduce(0) { $0 + $1.tokensPerComputeSecond }
        bytesSent = workers.reduce(0) { $0 + $1.bytesSent }
        peakBytesPerSecond = workers.compactMap(\.peakBytesPerSecond).max()
        peakBytesInASecond = workers.compactMap(\.peakBytesInASecond).max()
        computeUtilisation = workers.map(\.computeUtilisation).reduce(0, +) / Double(max(1, workers.count))
    }

    /// A table per worker and a line for the run, for people.
    public var table: String {
        var lines = ["", "worker     speed   steps    tokens  tok/s alone   MB sent   MB recv  peak MB/s  compute s  waiting s  compute %"]
        for w in workers {
            lines.append(String(format: "%-9@ %6.2f %7d %9d %12.0f %9.2f %9.2f %10.2f %10.1f %10.1f %9.1f%%", w.name as NSString, w.speed, w.steps,
                                w.tokens, w.tokensPerComputeSecond, Double(w.bytesSent) / 1e6, Double(w.bytesReceived) / 1e6,
                                (w.peakBytesPerSecond ?? 0) / 1e6, w.computeSeconds, w.waitSeconds, 100 * w.computeUtilisation))
        }
        var line = "\n\(strategy)" + (innerSteps.map { " H=\($0)" } ?? "") + " with \(codec) on \(link): "
        if let validationLoss { line += String(format: "validation loss %.4f, ", validationLoss) }
        line += "\(formatCount(Double(tokens))) tokens in \(formatDuration(wallSeconds)) = \(formatCount(tokensPerSecond)) tokens/s "
        line += String(format: "(%.0f%% of the %@ tokens/s the workers do alone), ", 100 * tokensPerSecond / max(sumOfAloneTokensPerSecond, 1e-9),
                       formatCount(sumOfAloneTokensPerSecond))
        line += String(format: "%.2f MB sent", Double(bytesSent) / 1e6)
        if let peakBytesPerSecond, let peakBytesInASecond {
            line += String(format: " (a worker's peak: %.2f MB/s over a tenth of a second, %.2f MB in a second)", peakBytesPerSecond / 1e6,
                           peakBytesInASecond / 1e6)
        }
        line += String(format: ", computing %.1f%% of the time", 100 * computeUtilisation)
        lines += [line, "run folder: \(runFolder) (its page: report.html)"]
        return lines.joined(separator: "\n")
    }
}
