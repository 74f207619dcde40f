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

/// A worker's peak send rates, shared by its collectives and the event loop that reports each
/// frame as written: over tenths of a second (what the link must carry at the busiest moment: a
/// sum sent at once takes the link's full rate) and over whole seconds.
public final class SendRateMeter: Sendable {
    private let rates: Mutex<(tenth: PeakSendRate, second: PeakSendRate)>

    public init(windowSeconds: Double = 0.1) {
        rates = Mutex((PeakSendRate(windowSeconds: windowSeconds), PeakSendRate(windowSeconds: 1)))
    }

    /// Counts `bytes` the link took now.
    public func record(bytes: Int) {
        let now = Double(DispatchTime.now().uptimeNanoseconds) / 1e9
        rates.withLock {
            $0.tenth.record(bytes: bytes, at: now)
            $0.second.record(bytes: bytes, at: now)
        }
    }

    /// Bytes per second in the busiest short window (a tenth of a second unless told otherwise).
    public var peakBytesPerSecond: Double { rates.withLock { $0.tenth.peakBytesPerSecond } }

    /// The most bytes sent in any one second.
    public var peakBytesInASecond: Double { rates.withLock { $0.second.peakBytesPerSecond } }
}
