import Dispatch
import Synchronization

/// The highest rate at which a worker sent, over any window of `windowSeconds`: what a link
/// must carry for the run not to wait on it. Bytes count when the link took them (in buckets of
/// a tenth of the window), so a burst that the link spreads out counts at the link's pace.
public struct PeakSendRate: Sendable, Equatable {
    public let windowSeconds: Double
    private let bucketSeconds: Double
    /// Bytes of the last buckets of a window, oldest first, and the index of the newest.
    private var recent: [Int]
    private var newest = Int.min
    /// The largest window sum closed so far.
    private var peakBytes = 0

    public init(windowSeconds: Double = 1) {
        precondition(windowSeconds > 0, "[PeakSendRate] window \(windowSeconds) s")
        self.windowSeconds = windowSeconds
        bucketSeconds = windowSeconds / 10
        recent = Array(repeating: 0, count: 10)
    }

    /// Counts `bytes` taken by the link at `seconds` (on any clock that only goes forward).
    public mutating func record(bytes: Int, at seconds: Double) {
        let bucket = Int((seconds / bucketSeconds).rounded(.down))
        if newest == Int.min { newest = bucket }
        if bucket > newest {
            // Every window that ends at a bucket in between has been seen whole before it moves on.
            for _ in 0..<min(bucket - newest, recent.count) {
                recent.removeFirst()
                recent.append(0)
            }
            newest = bucket
        }
        recent[recent.count - 1 - min(max(newest - bucket, 0), recent.count - 1)] += bytes
        peakBytes = max(peakBytes, recent.reduce(0, +))
    }

    /// Bytes per second in the busiest window so far.
    public var peakBytesPerSecond: Double { Double(peakBytes) / windowSeconds }
}

/// A worker's `PeakSendRate`, shared by its collectives and the event loop that reports each
/// frame as written.
public final class SendRateMeter: Sendable {
    private let rate: Mutex<PeakSendRate>

    public init(windowSeconds: Double = 1) {
        rate = Mutex(PeakSendRate(windowSeconds: windowSeconds))
    }

    /// Counts `bytes` the link took now.
    public func record(bytes: Int) {
        let now = Double(DispatchTime.now().uptimeNanoseconds) / 1e9
        rate.withLock { $0.record(bytes: bytes, at: now) }
    }

    /// Bytes per second in the busiest window so far.
    public var peakBytesPerSecond: Double { rate.withLock { $0.peakBytesPerSecond } }
}
