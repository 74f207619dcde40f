import Dispatch
import NIOCore
import Transport
import Wire

extension Ring {
    /// Replaces `vector` on every worker with the element-wise sum over workers (ring all-reduce:
    /// reduce-scatter, then all-gather), sending values through `codec`.
    ///
    /// Partial sums are accumulated in fp32 whatever the wire carries. Each chunk is encoded once
    /// by its owner for the all-gather and forwarded byte for byte, and the owner keeps the decoded
    /// values too, so every worker ends with bit-identical results even with a lossy codec.
    /// Each worker sends 2(n−1)/n of the encoded vector. Any length works, including 0 and
    /// lengths below n (empty chunks send nothing). The last `exactTail` values travel as fp32
    /// whatever `codec` is: counts and timings ride along with a compressed vector at no extra
    /// round trip.
    public func allReduceSum(_ vector: UnsafeMutableBufferPointer<Float>, codec id: CodecID, exactTail: Int = 0, round: UInt64,
                             rounding: RoundingMode = .nearest, random: inout LaneRandom) async throws -> CollectiveStats {
        let start = DispatchTime.now().uptimeNanoseconds
        guard size > 1 else { return CollectiveStats() }
        return try await typedFailures(round: round) {
            precondition((0...vector.count).contains(exactTail), "[Ring.allReduceSum] exact tail \(exactTail) of \(vector.count) values")
            let n = vector.count
            let split = n - exactTail
            func codecID(_ piece: Range<Int>) -> CodecID { piece.lowerBound >= split ? .fp32 : id }
            func pieces(_ c: Int) -> [Range<Int>] { self.pieces(of: chunk(c, length: n), split: split) }
            var sender = Sender(link: next!, of: self)
            var stats = CollectiveStats()

            func encode(_ piece: Range<Int>, random: inout LaneRandom) -> ByteBuffer {
                self.encode(vector, piece, codecID(piece), rounding: rounding, random: &random)
            }
            func receive(_ piece: Range<Int>, phase: String) async throws -> Frame {
                try await receiveData(round: round, range: piece, codec: codecID(piece), phase: phase, stats: &stats)
            }

            // Reduce-scatter: at step s send chunk r−s, receive chunk r−s−1 and add our part to it.
            for piece in pieces(rank) {
                try await sender.post(dataFrame(round: round, range: piece, codec: codecID(piece), payload: encode(piece, random: &random)))
            }
            for step in 0..<(size - 1) {
                for piece in pieces(rank - step - 1) {
                    let frame = try await receive(piece, phase: "reduce-scatter")
                    try codecID(piece).codec.decode(frame.payload, into: UnsafeMutableBufferPointer(rebasing: vector[piece]), accumulate: true)
                    if step < size - 2 {
                        try await sender.post(dataFrame(round: round, range: piece, codec: codecID(piece), payload: encode(piece, random: &random)))
                    }
                }
            }
            // All-gather: chunk r+1 is complete here. Encode it once, keep what others will decode,
            // pass on what arrives unless the next worker is its owner.
            for piece in pieces(rank + 1) {
                let payload = encode(piece, random: &random)
                try codecID(piece).codec.decode(payload, into: UnsafeMutableBufferPointer(rebasing: vector[piece]), accumulate: false)
                try await sender.post(dataFrame(round: round, range: piece, codec: codecID(piece), payload: payload))
            }
            for step in 0..<(size - 1) {
                for piece in pieces(rank - step) {
                    let frame = try await receive(piece, phase: "all-gather")
                    try codecID(piece).codec.decode(frame.payload, into: UnsafeMutableBufferPointer(rebasing: vector[piece]), accumulate: false)
                    if step < size - 2 { try await sender.post(forwarded(frame)) }
                }
            }
            try await sender.drain()
            stats.bytesSent = sender.stats.bytesSent
            stats.framesSent = sender.stats.framesSent
            stats.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            return stats
        }
    }

    /// Copies `vector` from the worker of rank `root` to every other worker (for state transfer),
    /// pipelined around the ring, through `codec` (fp32 for an exact copy).
    public func broadcast(_ vector: UnsafeMutableBufferPointer<Float>, root: Int, codec id: CodecID = .fp32,
                          round: UInt64) async throws -> CollectiveStats {
        let start = DispatchTime.now().uptimeNanoseconds
        guard size > 1 else { return CollectiveStats() }
        return try await typedFailures(round: round) {
            let codec = id.codec
            var sender = Sender(link: next!, of: self)
            var stats = CollectiveStats()
            let nextIsRoot = (rank + 1) % size == root
            var random = LaneRandom(seed: 0)
            for piece in pieces(of: 0..<vector.count) {
                if rank == root {
                    var buffer = ByteBuffer()
                    codec.encode(UnsafeBufferPointer(rebasing: vector[piece]), into: &buffer, rounding: .nearest, random: &random)
                    try codec.decode(buffer, into: UnsafeMutableBufferPointer(rebasing: vector[piece]), accumulate: false)
                    try await sender.post(dataFrame(round: round, range: piece, codec: id, payload: buffer))
                } else {
                    let frame = try await receiveData(round: round, range: piece, codec: id, phase: "broadcast", stats: &stats)
                    try codec.decode(frame.payload, into: UnsafeMutableBufferPointer(rebasing: vector[piece]), accumulate: false)
                    if !nextIsRoot { try await sender.post(forwarded(frame)) }
                }
            }
            try await sender.drain()
            stats.bytesSent = sender.stats.bytesSent
            stats.framesSent = sender.stats.framesSent
            stats.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            return stats
        }
    }
}
