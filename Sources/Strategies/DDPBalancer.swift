/// DDP with time rounds: how many sequences each worker takes in a step so that all finish it
/// together. The slowest worker takes the config's batch; every other worker takes as many as
/// it can in the time the slowest needs for its batch plus its optimizer step, given running
/// averages of each worker's seconds per sequence and per optimizer step.
///
/// Every worker feeds it the same measurements (they travel exactly beside the gradient), so
/// every worker derives the same counts: a pure policy, like hivemind's `load_balance_peers`.
public struct DDPBalancer: Sendable, Equatable {
    /// What one worker took in its last step.
    public struct Measurement: Sendable, Equatable {
        public var secondsPerSequence: Double
        public var optimizerSeconds: Double

        public init(secondsPerSequence: Double, optimizerSeconds: Double) {
            self.secondsPerSequence = secondsPerSequence
            self.optimizerSeconds = optimizerSeconds
        }
    }

    /// Weights of the old average and of the newest measurement: a step's time is noisy (other
    /// processes, page faults), and a worker's speed changes slowly.
    static let keep = 0.7, newest = 0.3

    /// Sequences the slowest worker takes: the config's batch times its accumulation.
    public let baseSequences: Int
    /// Sequences each worker takes in the next step, in ring order.
    public private(set) var sequences: [Int]
    /// Running averages, nil before the first measurement.
    public private(set) var speeds: [Measurement]?

    /// `saved` (from a resumed run) is used when it has one count per worker.
    public init(workers: Int, baseSequences: Int, saved: [Int]? = nil) {
        self.baseSequences = baseSequences
        sequences = saved.flatMap { $0.count == workers && $0.allSatisfy { $0 >= 1 } ? $0 : nil }
            ?? [Int](repeating: baseSequences, count: workers)
    }

    /// Each worker's weight in the all-reduced gradient: its share of the step's sequences.
    public func weight(of worker: Int) -> Float { Float(sequences[worker]) / Float(sequences.reduce(0, +)) }

    /// Takes every worker's newest measurement and sets the next step's counts.
    public mutating func record(_ measured: [Measurement]) {
        precondition(measured.count == sequences.count, "[DDPBalancer] \(measured.count) measurements for \(sequences.count) workers")
        let averaged = speeds.map { old in
            zip(old, measured).map {
                Measurement(secondsPerSequence: Self.keep * $0.secondsPerSequence + Self.newest * $1.secondsPerSequence,
                            optimizerSeconds: Self.keep * $0.optimizerSeconds + Self.newest * $1.optimizerSeconds)
            }
        } ?? measured
        speeds = averaged
        let step = averaged.map { Double(baseSequences) * $0.secondsPerSequence + $0.optimizerSeconds }.max()!
        sequences = averaged.map { s in
            let fit = ((step - s.optimizerSeconds) / max(s.secondsPerSequence, 1e-12)).rounded()
            // A measurement from a peer may be anything; a count is at least 1 and bounded.
            return fit.isFinite ? max(1, min(Int(fit), 1 << 20)) : baseSequences
        }
    }
}
