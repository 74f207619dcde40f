import Collectives
import Dispatch
import TensorCore
import Wire

/// A worker's side of the ring during one strategy run: numbers its collectives in the same
/// sequence on every worker, sends through the run's codec with error feedback, and counts the
/// bytes and the seconds spent waiting for peers.
final class WorkerCollectives {
    /// The ring; its frame timeout follows the measured round time (`roundEnded`).
    private(set) var ring: Ring
    let codec: CodecID
    /// The residual of a lossy codec; nil for fp32.
    let feedback: ErrorFeedback?
    /// Stochastic rounding and codec randomness of this worker, in a fixed sequence.
    private var random: LaneRandom
    /// Frame round of the next collective: the same sequence on every worker.
    private var round: UInt64 = 0
    private(set) var totals = CollectiveStats()
    private(set) var waitSeconds = 0.0
    /// The bytes this worker puts on the link, for its peak rate.
    private let meter = SendRateMeter()
    /// The peak rates of this worker's earlier rings.
    private var earlierPeak = (perSecond: 0.0, inASecond: 0.0)

    init(ring: Ring, codec: CodecID, errorFeedback beta: Float, count: Int, seed: UInt64) {
        self.ring = ring
        self.codec = codec
        feedback = codec != .fp32 ? ErrorFeedback(count: count, beta: beta) : nil
        random = LaneRandom(seed: seed &+ UInt64(ring.rank) &* 7919)
        self.ring.meter = meter
    }

    /// Bytes per second this worker sent in its busiest tenth of a second, and in its busiest second (see
    /// `SendRateMeter`).
    var peakRates: (perSecond: Double, inASecond: Double) {
        (max(earlierPeak.perSecond, meter.peakBytesPerSecond), max(earlierPeak.inASecond, meter.peakBytesInASecond))
    }

    /// The pace for a sum of `count` values (the last `exactTail` in fp32) whose frames are spread
    /// over `seconds`: the bytes this worker will send for it over that time.
    func pace(count: Int, exactTail: Int, over seconds: Double) -> Double? {
        guard seconds > 0, ring.size > 1 else { return nil }
        let m = Double(ring.size)
        let encoded = codec.codec.bytesPerValue * Double(count - exactTail) + 4 * Double(exactTail)
        // A ring all-reduce sends 2(m−1)/m of the encoding; the sparse all-gather, every other worker's whole.
        let bytes = codec.isSparse ? (m - 1) * encoded : 2 * (m - 1) / m * encoded
        return bytes / seconds
    }

    /// Wall seconds of the last rounds, for the frame timeout.
    private var recentRounds: [Double] = []
    /// The shortest frame timeout the adaptation sets: below it, a slow moment is not a failure.
    static let minimumFrameTimeout = 5.0

    /// Adapts the longest wait for one frame to the measured round time: twice the longest of the
    /// last 8 rounds (at least 5 s, at most the ring's configured timeout), so that a frozen peer
    /// or a silent link is found within about two rounds instead of the configured two minutes.
    /// Rounds measure waiting too, so a slow peer's honest rounds widen it.
    func roundEnded(seconds: Double) {
        recentRounds.append(seconds)
        if recentRounds.count > 8 { recentRounds.removeFirst() }
        let adapted = max(Self.minimumFrameTimeout, 2 * (recentRounds.max() ?? 0))
        let configured = Double(configuredTimeout.nanoseconds) / 1e9
        ring.timeout = .nanoseconds(Int64(min(adapted, configured) * 1e9))
    }
    private lazy var configuredTimeout = ring.timeout

    /// Keeps counting from an earlier ring of this worker.
    func continueCounting(bytesSent: Int, bytesReceived: Int, waitSeconds: Double, peakRates: (perSecond: Double, inASecond: Double)) {
        totals.bytesSent = bytesSent
        totals.bytesReceived = bytesReceived
        self.waitSeconds = waitSeconds
        earlierPeak = peakRates
    }

    /// Counts a transfer outside the ring (a state download) as collective bytes and waiting.
    func countDirect(sent: Int, received: Int, seconds: Double) {
        totals.bytesSent += sent
        totals.bytesReceived += received
        waitSeconds += seconds
    }

    /// Puts the residual through the codec once (error feedback) so that what is sent is what
    /// the codec can carry; a no-op for fp32. With `fragments` > 1, `vector` is one fragment of
    /// the whole (see `InterleavedFragments`).
    func compress(_ vector: UnsafeMutableBufferPointer<Float>, fragment: Int = 0, of fragments: Int = 1) throws {
        try feedback?.compress(vector, fragment: fragment, of: fragments, codec: codec.codec, rounding: .nearest, random: &random)
    }

    /// Scales `vector` by `weight` and replaces it with the sum over workers, through the run's
    /// codec; its last `exactTail` values are summed as they are, in fp32.
    func average(_ vector: UnsafeMutableBufferPointer<Float>, weight: Float, exactTail: Int = 0) async throws {
        let body = UnsafeMutableBufferPointer(rebasing: vector[..<(vector.count - exactTail)])
        if weight != 1 { for i in 0..<body.count { body[i] *= weight } }
        try compress(body)
        try await allReduce(vector, codec: codec, exactTail: exactTail)
    }

    /// The sum over workers in the foreground, counted as waiting; its frames leave at `pace` bytes per
    /// second when given.
    func allReduce(_ vector: UnsafeMutableBufferPointer<Float>, codec: CodecID, exactTail: Int = 0, pace: Double? = nil) async throws {
        var ring = self.ring
        ring.pace = pace
        let stats = try await sumAcrossWorkers(vector, on: ring, codec: codec, exactTail: exactTail, round: round, random: &random)
        round += 1
        totals += stats
        waitSeconds += stats.seconds
    }

    /// Every worker's `values`, in ring order (an exact fp32 sum of each worker's slot).
    func exchangeAll(_ values: [Float]) async throws -> [[Float]] {
        let k = values.count
        let shared = FloatSlab(count: ring.size * k)
        for (i, v) in values.enumerated() { shared.base[ring.rank * k + i] = v }
        try await allReduce(shared.buffer, codec: .fp32)
        return (0..<ring.size).map { Array(shared.buffer[($0 * k)..<(($0 + 1) * k)]) }
    }

    /// Starts a sum of `message` over workers that runs while this worker computes, once the sum
    /// `after` (launched before it) is off the ring. Its frames use the next round number; nothing else
    /// may use the ring until it is awaited (`landed`, `settle`).
    func launch(_ message: FloatSlab, exactTail: Int, pace: Double?,
                after earlier: Task<CollectiveStats, any Error>? = nil) -> Task<CollectiveStats, any Error> {
        var ring = self.ring
        ring.pace = pace
        let codec = self.codec, round = self.round
        self.round += 1
        let random = LaneRandom(seed: UInt64(ring.rank) &* 0x9E37_79B9 &+ round)
        return Task {
            // The earlier sum's failure is reported where it lands; this one must not start on a broken ring.
            _ = try await earlier?.value
            var random = random
            return try await sumAcrossWorkers(message.buffer, on: ring, codec: codec, exactTail: exactTail, round: round, random: &random)
        }
    }

    /// Waits until launched sums are off the ring (before the ring is used in the foreground); they land
    /// later. The time spent here counts as waiting.
    func settle(_ tasks: [Task<CollectiveStats, any Error>]) async throws {
        guard !tasks.isEmpty else { return }
        let start = DispatchTime.now().uptimeNanoseconds
        for task in tasks { _ = try await task.value }
        waitSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Waits for a launched sum; the time spent here counts as waiting.
    func landed(_ task: Task<CollectiveStats, any Error>) async throws {
        let start = DispatchTime.now().uptimeNanoseconds
        let stats = try await task.value
        waitSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        totals.bytesSent += stats.bytesSent
        totals.bytesReceived += stats.bytesReceived
    }
}

/// Sums `vector` over workers: a ring all-reduce, or for sparse codecs an all-gather of each
/// worker's encoding (re-sparsifying partial sums at every hop would lose most of them).
private func sumAcrossWorkers(_ vector: UnsafeMutableBufferPointer<Float>, on ring: Ring, codec: CodecID, exactTail: Int, round: UInt64,
                              random: inout LaneRandom) async throws -> CollectiveStats {
    codec.isSparse
        ? try await ring.allGatherSum(vector, codec: codec, exactTail: exactTail, round: round, random: &random)
        : try await ring.allReduceSum(vector, codec: codec, exactTail: exactTail, round: round, random: &random)
}
