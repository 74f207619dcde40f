import TensorCore
import Wire

/// What one `tributary ring-worker` process reports after its all-reduces.
public struct RingWorkerResult: Codable, Sendable {
    public var rank: Int
    public var codec: String
    public var values: Int
    /// Seconds of each all-reduce round.
    public var roundSeconds: [Double]
    public var bytesSentPerRound: Int
    public var maxAbsoluteError: Double
    public var relativeRMSError: Double
    /// FNV-1a of the result's bytes: equal on every worker when they agree bit for bit.
    public var resultHash: UInt64
    /// CPU seconds the process spent in its rounds (every thread: codec, framing, TLS, sockets).
    public var cpuSeconds: Double?
    /// With `--direct-to`: seconds of the direct hand-off of the vector from rank 0 (connection included)
    /// and the bytes this worker sent or received in it (0 for a worker that took no part).
    public var directSeconds: Double?
    public var directBytes: Int?

    public init(rank: Int, codec: String, values: Int, roundSeconds: [Double], bytesSentPerRound: Int, maxAbsoluteError: Double,
                relativeRMSError: Double, resultHash: UInt64) {
        (self.rank, self.codec, self.values, self.roundSeconds, self.bytesSentPerRound) = (rank, codec, values, roundSeconds, bytesSentPerRound)
        (self.maxAbsoluteError, self.relativeRMSError, self.resultHash) = (maxAbsoluteError, relativeRMSError, resultHash)
    }
}

/// Every ring worker's input, which any worker can regenerate to check the sum.
public enum RingWorkerInput {
    /// Worker r's input: a seeded pseudo-random vector in [−1, 1).
    public static func fill(_ v: UnsafeMutableBufferPointer<Float>, seed: UInt64, rank r: Int) {
        var random = LaneRandom(seed: seed &* 1000 &+ UInt64(r))
        var i = 0
        while i < v.count {
            let u = random.next() * 2 - 1
            for j in 0..<min(16, v.count - i) { v[i + j] = u[j] }
            i += 16
        }
    }

    /// Max and relative RMS error against the exact sum, regenerating every worker's input.
    public static func errors(of v: UnsafeMutableBufferPointer<Float>, seed: UInt64, workers: Int) -> (Double, Double) {
        var streams = (0..<workers).map { LaneRandom(seed: seed &* 1000 &+ UInt64($0)) }
        var maxError = 0.0, errorSquares = 0.0, sumSquares = 0.0
        var i = 0
        while i < v.count {
            var exact = [Double](repeating: 0, count: 16)
            for w in 0..<workers {
                let u = streams[w].next() * 2 - 1
                for j in 0..<16 { exact[j] += Double(u[j]) }
            }
            for j in 0..<min(16, v.count - i) {
                let e = Double(v[i + j]) - exact[j]
                maxError = max(maxError, abs(e))
                errorSquares += e * e
                sumSquares += exact[j] * exact[j]
            }
            i += 16
        }
        return (maxError, (errorSquares / max(sumSquares, 1e-30)).squareRoot())
    }
}
