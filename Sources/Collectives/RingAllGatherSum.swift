import Dispatch
import NIOCore
import Transport
import Wire

extension Ring {
    /// Replaces `vector` on every worker with the sum over workers of each worker's encoded
    /// vector: every worker encodes its own values once, the encodings travel around the ring
    /// unchanged (an all-gather), and every worker decodes all of them and adds them in rank
    /// order, so all end bit-identical.
    ///
    /// Unlike `allReduceSum`, nothing is re-encoded on the way, which matters for sparse codecs:
    /// top-k of a partial sum would drop most of what the other workers sent. The price is
    /// bytes: each worker sends (n−1)× its encoding instead of 2(n−1)/n×. The last `exactTail`
    /// values travel as fp32.
    public func allGatherSum(_ vector: UnsafeMutableBufferPointer<Float>, codec id: CodecID, exactTail: Int = 0, round: UInt64,
                             rounding: RoundingMode = .nearest, random: inout LaneRandom) async throws -> CollectiveStats {
        let start = DispatchTime.now().uptimeNanoseconds
        guard size > 1 else { return CollectiveStats() }
        return try await typedFailures(round: round) {
            precondition((0...vector.count).contains(exactTail), "[Ring.allGatherSum] exact tail \(exactTail) of \(vector.count) values")
            let n = vector.count
            let split = n - exactTail
            func codecID(_ piece: Range<Int>) -> CodecID { piece.lowerBound >= split ? .fp32 : id }
            let pieces = self.pieces(of: 0..<n, split: split)
            var sender = Sender(link: next!, of: self)
            var stats = CollectiveStats()

            // Every worker's decoded contribution, summed in rank order at the end.
            var contributions = [[Float]](repeating: [], count: size)
            var own = [Float](repeating: 0, count: n)
            for piece in pieces {
                let payload = encode(vector, piece, codecID(piece), rounding: rounding, random: &random)
                try own.withUnsafeMutableBufferPointer {
                    try codecID(piece).codec.decode(payload, into: UnsafeMutableBufferPointer(rebasing: $0[piece]), accumulate: false)
                }
                try await sender.post(dataFrame(round: round, range: piece, codec: codecID(piece), payload: payload))
            }
            contributions[rank] = own
            for step in 0..<(size - 1) {
                let origin = ((rank - step - 1) % size + size) % size
                var decoded = [Float](repeating: 0, count: n)
                for piece in pieces {
                    let frame = try await receiveData(round: round, range: piece, codec: codecID(piece), phase: "all-gather of rank \(origin)", stats: &stats)
                    try decoded.withUnsafeMutableBufferPointer {
                        try codecID(piece).codec.decode(frame.payload, into: UnsafeMutableBufferPointer(rebasing: $0[piece]), accumulate: false)
                    }
                    if step < size - 2 { try await sender.post(forwarded(frame)) }
                }
                contributions[origin] = decoded
            }
            try await sender.drain()
            for i in 0..<n { vector[i] = 0 }
            for c in contributions {
                c.withUnsafeBufferPointer { c in for i in 0..<n { vector[i] += c[i] } }
            }
            stats.bytesSent = sender.stats.bytesSent
            stats.framesSent = sender.stats.framesSent
            stats.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            return stats
        }
    }
}
