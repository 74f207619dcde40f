import Coordination
import Foundation

/// What a chaos run cost, from the reports in its run folder and the disturbances it suffered:
/// a pure function of records, tested without processes.
public struct ChaosAnalysis: Codable, Sendable, Equatable {
    /// Tokens of the rounds that reached the shared model: for each round, its last instance
    /// (highest ring epoch) counts, once per worker in it.
    public var committedTokens: Int
    /// Tokens the worker processes trained on, discarded rounds included; for a killed process,
    /// plus what it trained after its last report (its average rate until then × the time to the kill).
    public var computedTokens: Int
    /// committed ÷ computed.
    public var efficiency: Double
    /// Seconds from each disturbance until the run reported a round it had not reached before
    /// (nil when it never did: the run ended first).
    public var recoverySeconds: [Double?]
    /// The median gap between consecutive round reports of the first worker by name.
    public var medianRoundSeconds: Double?
    /// The shared model's validation loss at the end.
    public var finalValidationLoss: Double?

    /// A process of a worker ended at `time` (Unix seconds) by SIGKILL.
    public struct Kill: Codable, Sendable, Equatable {
        public var worker: String
        public var time: Double
        public init(worker: String, time: Double) { (self.worker, self.time) = (worker, time) }
    }

    /// `tokensOfRound(r)` is what one worker trains in round r; `disturbances` are Unix times.
    public init(records: [RecordedReport], kills: [Kill], disturbances: [Double], tokensOfRound: (Int) -> Int) {
        let reports = records.sorted { ($0.receivedAt ?? 0) < ($1.receivedAt ?? 0) }

        // The committed instance of each round: the reports of its newest epoch, one per worker.
        var newest: [Int: (epoch: Int, workers: Set<String>)] = [:]
        for r in reports.map(\.report) {
            let epoch = r.epoch ?? 0
            if let seen = newest[r.round], seen.epoch > epoch { continue }
            if newest[r.round]?.epoch == epoch { newest[r.round]!.workers.insert(r.name) } else { newest[r.round] = (epoch, [r.name]) }
        }
        committedTokens = newest.reduce(0) { $0 + $1.value.workers.count * tokensOfRound($1.key) }

        // Each process's work: a worker's reports, split where its count starts again (a new process).
        var computed = 0
        for name in Set(reports.map(\.report.name)) {
            let mine = reports.filter { $0.report.name == name }
            var segments: [[RecordedReport]] = []
            for record in mine {
                if let last = segments.last?.last, (record.report.computedTokens ?? 0) >= (last.report.computedTokens ?? 0) {
                    segments[segments.count - 1].append(record)
                } else {
                    segments.append([record])
                }
            }
            for (i, segment) in segments.enumerated() {
                let last = segment.last!
                computed += last.report.computedTokens ?? last.report.tokens
                // Killed before the next process's first report (or at all, for the last one).
                let end = i + 1 < segments.count ? segments[i + 1].first!.receivedAt ?? .infinity : .infinity
                guard let seen = last.receivedAt,
                      let kill = kills.filter({ $0.worker == name && $0.time > seen && $0.time < end }).map(\.time).min(),
                      last.report.elapsedSeconds > 0
                else { continue }
                let rate = Double(last.report.computedTokens ?? last.report.tokens) / last.report.elapsedSeconds
                computed += Int((kill - seen) * rate)
            }
        }
        computedTokens = max(computed, committedTokens)
        efficiency = computedTokens > 0 ? Double(committedTokens) / Double(computedTokens) : 1

        recoverySeconds = disturbances.map { time in
            let before = reports.filter { ($0.receivedAt ?? 0) <= time }.map(\.report.round).max() ?? -1
            return reports.first { ($0.receivedAt ?? 0) > time && $0.report.round > before }.flatMap { $0.receivedAt.map { $0 - time } }
        }
        let lead = reports.map(\.report.name).min()
        let times = reports.filter { $0.report.name == lead }.compactMap(\.receivedAt)
        let gaps = zip(times.dropFirst(), times).map { $0 - $1 }.sorted()
        medianRoundSeconds = gaps.isEmpty ? nil : gaps[gaps.count / 2]
        finalValidationLoss = reports.last { $0.report.finished && $0.report.validationLoss != nil }?.report.validationLoss
            ?? reports.last { $0.report.validationLoss != nil }?.report.validationLoss
    }
}
