import Foundation

/// Something that happened to a run, for its timeline: who joined, was lost or left, when the
/// ring changed, when training started and ended, when a worker went back to a saved round, when
/// the shared model was saved. The coordinator's state machine emits them; the run folder keeps
/// them (`events.jsonl`) so that a restarted coordinator and `tributary report` show them too.
public struct RunEvent: Codable, Sendable, Equatable {
    /// What kind of thing happened.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case joined, rejoined, left, lost, returned
        /// The ring's membership changed (a new epoch).
        case ringChanged = "ring-changed"
        case trainingStarted = "training-started"
        /// A worker reported a round at or before one it reported earlier: the ring went back to
        /// the last round every member saved.
        case resumed
        /// The shared model was saved to a checkpoint.
        case checkpoint
        case finished
        /// A round's update was rejected by the workers' guard (not finite, or an outlier).
        case updateRejected = "update-rejected"
        /// A coordinator started on a run folder that already held this run's history.
        case coordinatorRestarted = "coordinator-restarted"
    }

    /// When, in seconds: the state machine's clock when it emits the event; Unix time once the
    /// coordinator records it.
    public var time: Double
    public var kind: Kind
    /// The worker it concerns, if one.
    public var worker: String?
    /// The ring epoch after the event.
    public var epoch: Int
    /// The run's round at the time, when training had started.
    public var round: Int?
    /// One line for people: what happened, with numbers.
    public var detail: String

    public init(time: Double, kind: Kind, worker: String?, epoch: Int, round: Int?, detail: String) {
        self.time = time
        self.kind = kind
        self.worker = worker
        self.epoch = epoch
        self.round = round
        self.detail = detail
    }
}

/// A worker's round report with the Unix time the coordinator received it: one line of a run
/// folder's `metrics.jsonl` (the report's own keys plus `receivedAt`, so that readers of plain
/// reports still read it).
public struct RecordedReport: Codable, Sendable, Equatable {
    public var report: WorkerReport
    /// Unix seconds; nil in lines written before it was recorded.
    public var receivedAt: Double?

    public init(report: WorkerReport, receivedAt: Double?) {
        self.report = report
        self.receivedAt = receivedAt
    }

    private enum Keys: String, CodingKey { case receivedAt }

    public init(from decoder: any Decoder) throws {
        report = try WorkerReport(from: decoder)
        receivedAt = try decoder.container(keyedBy: Keys.self).decodeIfPresent(Double.self, forKey: .receivedAt)
    }

    public func encode(to encoder: any Encoder) throws {
        try report.encode(to: encoder)
        var container = encoder.container(keyedBy: Keys.self)
        try container.encodeIfPresent(receivedAt, forKey: .receivedAt)
    }
}
