import Coordination
import Foundation

/// One worker as the dashboard and the run report show it.
public struct MemberRow: Codable, Sendable, Equatable {
    public var name: String
    /// `active`, `left` or `lost`; `reported` in a finished run's report, where only reports remain.
    public var state: String
    /// Its measured speed alone: tokens per second of computing.
    public var speed: Double?
    /// Tokens per second of its whole time, waiting included.
    public var tokensPerSecond: Double?
    /// Share of its time spent computing, 0…1.
    public var computeShare: Double?
    public var bytesSent: Int?
    public var bytesReceived: Int?
    /// Its last reported round, from 1.
    public var round: Int?
    public var rounds: Int?
    public var loss: Double?
    public var secondsSinceSeen: Double?
    public var linkBytesPerSecond: Double?

    public init(name: String, state: String, report: WorkerReport?, secondsSinceSeen: Double? = nil) {
        self.name = name
        self.state = state
        self.secondsSinceSeen = secondsSinceSeen
        guard let r = report else { return }
        speed = r.tokensPerComputeSecond
        tokensPerSecond = r.elapsedSeconds > 0 ? Double(r.tokens) / r.elapsedSeconds : nil
        computeShare = r.elapsedSeconds > 0 ? min(1, r.computeSeconds / r.elapsedSeconds) : nil
        (bytesSent, bytesReceived) = (r.bytesSent, r.bytesReceived)
        (round, rounds, loss) = (r.round + 1, r.rounds, r.loss)
        linkBytesPerSecond = r.linkBytesPerSecond
    }
}

/// Everything the dashboard page shows at one moment: what the coordinator pushes to it (as one
/// server-sent event) whenever the run changes.
public struct DashboardSnapshot: Codable, Sendable, Equatable {
    /// A hash of the run's id, to tell runs apart.
    public var runFingerprint: String
    public var phase: String
    public var epoch: Int
    public var expectedWorkers: Int
    /// The run's current round (from 1) and its number of rounds, once training started.
    public var round: Int?
    public var rounds: Int?
    /// The newest validation loss of the shared model.
    public var validationLoss: Double?
    /// Bytes every worker sent and received, summed.
    public var bytesSent: Int
    public var bytesReceived: Int
    public var members: [MemberRow]
    /// The active members in ring order (each sends to the next; the last to the first).
    public var ring: [String]
    public var stateSource: String?
    /// The charts as SVG, by name (`loss`, `throughput`, `bytes`, `utilisation`).
    public var charts: [String: String]
    /// The newest events first, at most `maxEvents`.
    public var events: [RunEvent]

    public static let maxEvents = 200

    /// `charts` are `RunCharts(history)` by name, when the caller keeps them between snapshots.
    public init(status: StatusReport, ring: RingView, history: RunHistory, charts: [String: String]? = nil) {
        runFingerprint = status.runFingerprint
        phase = status.phase.rawValue
        epoch = status.epoch
        expectedWorkers = status.expectedWorkers
        let reports = status.members.compactMap(\.lastReport)
        round = status.round.map { $0 + 1 }
        rounds = reports.map(\.rounds).max()
        validationLoss = history.reports.last { $0.report.validationLoss != nil }?.report.validationLoss
        bytesSent = reports.reduce(0) { $0 + $1.bytesSent }
        bytesReceived = reports.reduce(0) { $0 + $1.bytesReceived }
        members = status.members.sorted { $0.name < $1.name }.map {
            MemberRow(name: $0.name, state: $0.state.rawValue, report: $0.lastReport, secondsSinceSeen: $0.secondsSinceSeen)
        }
        self.ring = ring.members.map(\.name)
        stateSource = status.stateSource
        self.charts = charts ?? RunCharts(history).byName
        events = Array(history.events.suffix(Self.maxEvents).reversed())
    }
}
